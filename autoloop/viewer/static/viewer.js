// autoloop replay viewer: episode browser, top-down replay on a canvas, side-by-side compare.
// Views live in the URL hash: #/episodes?<filters>, #/episode/<id>?f=<frame>, #/compare/<a>/<b>?f=<frame>.
// Data from episodes is only ever written with textContent or drawn on the canvas, never parsed as markup.
'use strict';

const $ = (selector, root = document) => root.querySelector(selector);
const TYPES = { f32: Float32Array, i32: Int32Array, u8: Uint8Array };
const KIND_COLORS = { vehicle: '#58a6ff', pedestrian: '#f778ba', cyclist: '#56d364', static: '#a0a7b0', other: '#d2a8ff' };
const LIGHT_COLORS = ['#3fb950', '#e3b341', '#f85149'];
const BACKGROUND = '#15181d';
const PLAN_COLOR = '#39c5cf';
const SVG = 'http://www.w3.org/2000/svg';
// the BEV's channels (sim.scene.bev.Channel), drawn in this order, each over the ones before
const BEV_COLORS = {
  drivable: '#373e47', lane_lines: '#768390', route: '#8957e5', vehicles: '#58a6ff', pedestrians: '#f778ba',
  obstacles: '#a0a7b0', light_red: '#f85149', light_yellow: '#e3b341', light_green: '#3fb950',
};
const BEV_OTHER = ['#d2a8ff', '#56d364', '#ffa657', '#79c0ff'];
const FILTER_NAMES = ['source', 'purpose', 'suite', 'scenario_type', 'map', 'model', 'outcome', 'infraction', 'trigger',
  'tag', 'seed', 'q'];

// ------------------------------------------------------------------ helpers
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function decode(column) {
  if (!column) return null;
  const binary = atob(column.b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const array = new TYPES[column.type](bytes.buffer);
  array.shape = column.shape;
  return array;
}

function showError(message) {
  $('#error-text').textContent = message;
  $('#error').hidden = false;
}

function clearError() { $('#error').hidden = true; }

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: 'application/json' } });
  } catch (error) {
    throw new Error(`${path}: the viewer's server did not answer (${error.message})`);
  }
  let body = null;
  try { body = await response.json(); } catch (error) { body = null; }
  if (!response.ok) throw new Error(`${path}: ${response.status} ${body && body.error ? body.error : response.statusText}`);
  return body;
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  return String(value);
}

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { view: parts[0] || 'episodes', args: parts.slice(1), params: new URLSearchParams(query) };
}

function setHash(view, args, params, { replace = false } = {}) {
  const path = ['#', view, ...args.map(encodeURIComponent)].join('/');
  const query = params.toString();
  const url = path + (query ? `?${query}` : '');
  if (replace) history.replaceState(null, '', url);
  else location.hash = url.slice(1);
}

// ------------------------------------------------------------------ episode browser
const browser = { facets: null, selected: new Set() };

async function showBrowser(params) {
  $('#replay-view').hidden = true;
  $('#browser-view').hidden = false;
  player.stop();
  $('#breadcrumb').textContent = 'episodes';
  if (!browser.facets) {
    browser.facets = await api('/api/facets');
    for (const select of document.querySelectorAll('#filters select')) {
      select.replaceChildren(el('option', { value: '', text: 'any' }));
      for (const value of browser.facets[select.name] || []) select.append(el('option', { value: String(value), text: String(value) }));
    }
  }
  for (const name of FILTER_NAMES) $(`#filters [name="${name}"]`).value = params.get(name) || '';
  $('#page-size').value = params.get('page_size') || '50';
  const sort = params.get('sort') || 'episode_id';
  const order = params.get('order') || 'asc';
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.classList.toggle('sorted-asc', th.dataset.sort === sort && order === 'asc');
    th.classList.toggle('sorted-desc', th.dataset.sort === sort && order === 'desc');
  }
  const query = new URLSearchParams();
  for (const [key, value] of params) if (value !== '') query.set(key, value);
  const result = await api(`/api/episodes?${query}`);
  renderRows(result);
  $('#episodes').dataset.loaded = query.toString();  // which list the table shows (tests wait on it)
}

function renderRows(result) {
  const body = $('#episodes tbody');
  body.replaceChildren();
  for (const row of result.rows) {
    const check = el('input', { type: 'checkbox', 'aria-label': `select ${row.episode_id}` });
    check.checked = browser.selected.has(row.episode_id);
    check.addEventListener('change', () => {
      if (check.checked) browser.selected.add(row.episode_id); else browser.selected.delete(row.episode_id);
      updateCompareButton();
    });
    const extras = [...(row.triggers || []).map((t) => `trigger:${t}`), ...(row.tags || [])].join(' ');
    body.append(el('tr', { dataset: { episodeId: row.episode_id } },
      el('td', {}, check),
      el('td', {}, el('a', { href: `#/episode/${encodeURIComponent(row.episode_id)}`, text: row.episode_id })),
      el('td', { text: row.source }), el('td', { text: row.date }), el('td', { text: fmt(row.map_name) }),
      el('td', { text: fmt(row.model) }), el('td', { class: 'num', text: fmt(row.traffic_seed) }),
      el('td', { text: fmt(row.outcome) }), el('td', { class: 'num', text: fmt(row.driving_score) }),
      el('td', { class: 'num', text: fmt(row.route_completion) }),
      el('td', { class: 'wrap', text: (row.infractions || []).join(', ') }), el('td', { class: 'wrap', text: extras }),
      el('td', { class: 'num', text: row.duration_s == null ? '—' : `${row.duration_s.toFixed(1)} s` })));
  }
  const pages = Math.max(1, Math.ceil(result.total / result.page_size));
  $('#total').textContent = `${result.total} episode${result.total === 1 ? '' : 's'}`;
  $('#page-info').textContent = `page ${result.page} of ${pages}`;
  $('#prev-page').disabled = result.page <= 1;
  $('#next-page').disabled = result.page >= pages;
  updateCompareButton();
}

function updateCompareButton() {
  const button = $('#compare-selected');
  button.disabled = browser.selected.size !== 2;
  button.textContent = `compare selected (${browser.selected.size}/2)`;
}

function browserParams() {
  return parseHash().view === 'episodes' ? parseHash().params : new URLSearchParams();
}

function navigateBrowser(change) {
  const params = browserParams();
  for (const [key, value] of Object.entries(change)) {
    if (value === '' || value === null) params.delete(key); else params.set(key, value);
  }
  setHash('episodes', [], params);
}

// ------------------------------------------------------------------ scene: one episode on one canvas
class Scene {
  constructor(canvas, episode, map) {
    this.canvas = canvas;
    this.episode = episode;
    this.map = map;
    const ego = episode.ego;
    this.t = decode(ego.time_s);
    this.x = decode(ego.x); this.y = decode(ego.y);
    this.yaw = decode(ego.yaw); this.speed = decode(ego.speed);
    this.accel = decode(ego.accel); this.action = decode(ego.action); this.steer = decode(ego.steer);
    this.lights = decode(ego.lights); this.plan = decode(ego.plan);
    this.completion = decode(ego.completion); this.runningDs = decode(ego.running_ds);
    this.route = decode(episode.route);
    const actors = episode.actors;
    if (actors) {
      this.actors = {
        ids: actors.ids, kindNames: actors.kind_names, kinds: decode(actors.kinds), length: decode(actors.length),
        width: decode(actors.width), actor: decode(actors.actor), x: decode(actors.x), y: decode(actors.y),
        yaw: decode(actors.yaw), frameStart: decode(actors.frame_start),
      };
    }
    this.frames = this.t.length;
    this.frame = 0;
    // map-local -> episode-local offset (both are offsets from their own origin)
    this.mapShift = map ? [map.origin[0] - episode.origin[0], map.origin[1] - episode.origin[1]] : [0, 0];
    this.paths = map ? buildMapPaths(map) : null;
    this.view = { cx: this.x[0] || 0, cy: this.y[0] || 0, scale: 6 };
    this.follow = true;
    this.attachPanZoom();
  }

  frameAt(time) {  // the last frame at or before `time`
    let lo = 0; let hi = this.frames - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.t[mid] <= time + 1e-6) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  attachPanZoom() {
    let drag = null;
    this.canvas.addEventListener('pointerdown', (event) => {
      drag = { x: event.clientX, y: event.clientY };
      this.canvas.setPointerCapture(event.pointerId);
    });
    this.canvas.addEventListener('pointermove', (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x; const dy = event.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) < 1) return;
      player.setFollow(false);
      this.view.cx -= dx / this.view.scale; this.view.cy += dy / this.view.scale;
      drag = { x: event.clientX, y: event.clientY };
      player.redraw();
    });
    this.canvas.addEventListener('pointerup', () => {
      if (drag && !this.follow) player.saveUrl();
      drag = null;
    });
    this.canvas.addEventListener('wheel', (event) => {
      event.preventDefault();
      const rect = this.canvas.getBoundingClientRect();
      const px = event.clientX - rect.left - rect.width / 2; const py = event.clientY - rect.top - rect.height / 2;
      const before = [this.view.cx + px / this.view.scale, this.view.cy - py / this.view.scale];
      player.zoom(Math.exp(-event.deltaY * 0.0015));
      if (!this.follow) {
        this.view.cx = before[0] - px / this.view.scale; this.view.cy = before[1] + py / this.view.scale;
      }
      player.redraw();
      clearTimeout(this.wheelSave);
      this.wheelSave = setTimeout(() => player.saveUrl(), 250);
    }, { passive: false });
  }

  draw(frame) {
    this.frame = frame;
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth; const height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (this.follow && this.frames) { this.view.cx = this.x[frame]; this.view.cy = this.y[frame]; }
    const { cx, cy, scale } = this.view;
    const s = scale * ratio;
    const toScreen = (x, y) => [width / 2 + (x - cx) * scale, height / 2 - (y - cy) * scale];
    ctx.setTransform(s, 0, 0, -s, ratio * width / 2 - s * cx, ratio * height / 2 + s * cy);
    const px = 1 / s;  // one device pixel in metres
    if (this.paths) this.drawMap(ctx, frame, px);
    if (this.route) strokePolyline(ctx, this.route, 0, this.route.length / 2, 'rgba(47,129,247,0.35)', 1.6);
    // trail
    ctx.beginPath();
    for (let k = 0; k <= frame; k++) { if (k === 0) ctx.moveTo(this.x[k], this.y[k]); else ctx.lineTo(this.x[k], this.y[k]); }
    ctx.strokeStyle = 'rgba(240,136,62,0.8)'; ctx.lineWidth = 2 * px; ctx.stroke();
    const labels = [];
    if (this.actors) {
      const a = this.actors;
      // actors named by an event within 1 s of now get a ring
      const near = Math.round(1 / (this.episode.dt_s || 0.1));
      const involved = new Set(this.episode.events.filter((e) => e.actor_id && Math.abs(e.step - frame) <= near)
        .map((e) => e.actor_id));
      for (let r = a.frameStart[frame]; r < a.frameStart[Math.min(frame + 1, a.frameStart.length - 1)]; r++) {
        const id = a.actor[r];
        const kind = a.kindNames[a.kinds[id]] || 'other';
        drawBox(ctx, a.x[r], a.y[r], a.yaw[r], Math.max(a.length[id], 0.3), Math.max(a.width[id], 0.3),
          KIND_COLORS[kind] || KIND_COLORS.other, px);
        if (involved.has(a.ids[id])) {
          ctx.beginPath(); ctx.arc(a.x[r], a.y[r], Math.max(a.length[id], 2) * 0.8, 0, 2 * Math.PI);
          ctx.strokeStyle = '#e5534b'; ctx.lineWidth = 2 * px; ctx.stroke();
        }
        labels.push([a.x[r], a.y[r], a.ids[id]]);
      }
    }
    if (this.plan && this.frames) this.drawPlan(ctx, frame, px);
    for (const event of this.episode.events) {
      if (event.step > frame) break;
      drawCross(ctx, event.x, event.y, event.kind.startsWith('trigger:') ? '#c297ff' : '#e5534b', 6 * px);
    }
    if (this.frames) drawBox(ctx, this.x[frame], this.y[frame], this.yaw ? this.yaw[frame] : 0, 4.7, 2.0, '#f0883e', px, true);
    // labels in screen space
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (scale >= 4) {
      ctx.font = '10px system-ui, sans-serif'; ctx.fillStyle = '#d8dde3';
      for (const [x, y, id] of labels) {
        const [sx, sy] = toScreen(x, y);
        if (sx > -20 && sx < width + 20 && sy > -20 && sy < height + 20) ctx.fillText(id, sx + 6, sy - 6);
      }
    }
    ctx.fillStyle = '#8b95a1'; ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(`${(this.t[frame] || 0).toFixed(2)} s`, 8, height - 8);
    canvas.dataset.frame = String(frame);
    canvas.dataset.cx = String(cx + this.episode.origin[0]);
    canvas.dataset.cy = String(cy + this.episode.origin[1]);
    canvas.dataset.scale = String(scale);
  }

  drawPlan(ctx, frame, px) {  // the driver's planned waypoints at this frame, joined from the ego on
    const points = this.plan.shape[1];
    const at = (k) => [this.plan[(frame * points + k) * 2], this.plan[(frame * points + k) * 2 + 1]];
    ctx.beginPath(); ctx.moveTo(this.x[frame], this.y[frame]);
    for (let k = 0; k < points; k++) ctx.lineTo(...at(k));
    ctx.strokeStyle = 'rgba(57,197,207,0.6)'; ctx.lineWidth = 1.5 * px; ctx.stroke();
    ctx.fillStyle = PLAN_COLOR;
    for (let k = 0; k < points; k++) {
      const [x, y] = at(k);
      ctx.beginPath(); ctx.arc(x, y, 3 * px, 0, 2 * Math.PI); ctx.fill();
    }
  }

  drawMap(ctx, frame, px) {
    const p = this.paths;
    ctx.save();
    ctx.translate(this.mapShift[0], this.mapShift[1]);
    ctx.fillStyle = '#2d333b'; ctx.fill(p.drivable, 'evenodd');
    ctx.fillStyle = '#2d333b'; ctx.strokeStyle = '#2d333b'; ctx.lineWidth = 3.2; ctx.stroke(p.lanesWide);
    ctx.fillStyle = 'rgba(230,237,243,0.22)'; ctx.fill(p.crosswalks);
    ctx.strokeStyle = '#768390'; ctx.lineWidth = 1.2 * px; ctx.stroke(p.boundaries);
    ctx.setLineDash([6 * px, 8 * px]); ctx.strokeStyle = 'rgba(173,186,199,0.25)'; ctx.lineWidth = px; ctx.stroke(p.centerlines);
    ctx.setLineDash([]);
    const lines = p.stopLines;
    const groups = this.lights ? this.lights.shape[1] : 0;
    for (let k = 0; k < lines.length; k += 4) {
      const [x, y, heading, group] = [lines[k], lines[k + 1], lines[k + 2], lines[k + 3]];
      const state = groups && group < groups ? this.lights[frame * groups + group] : -1;
      const color = state >= 0 ? LIGHT_COLORS[state] || '#8b95a1' : '#8b95a1';
      const nx = -Math.sin(heading) * 1.7; const ny = Math.cos(heading) * 1.7;
      ctx.beginPath(); ctx.moveTo(x - nx, y - ny); ctx.lineTo(x + nx, y + ny);
      ctx.strokeStyle = color; ctx.lineWidth = 0.6; ctx.stroke();
    }
    const signs = p.stopSigns;
    ctx.fillStyle = '#d73a49';
    for (let k = 0; k < signs.length; k += 3) {
      ctx.beginPath(); ctx.arc(signs[k], signs[k + 1], 0.9, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.restore();
  }
}

function polylinePath(points, offsets, { close = false, path = new Path2D(), skip = null } = {}) {
  for (let k = 0; k + 1 < offsets.length; k++) {
    if (skip && skip(k)) continue;
    for (let i = offsets[k]; i < offsets[k + 1]; i++) {
      if (i === offsets[k]) path.moveTo(points[2 * i], points[2 * i + 1]); else path.lineTo(points[2 * i], points[2 * i + 1]);
    }
    if (close) path.closePath();
  }
  return path;
}

function buildMapPaths(map) {
  const get = (name) => [decode(map[name].points), decode(map[name].offsets)];
  const junction = decode(map.junction);
  const [dp, doff] = get('drivable'); const [cp, coff] = get('crosswalks'); const [lp, loff] = get('centerlines');
  const [leftP, leftO] = get('left'); const [rightP, rightO] = get('right');
  const outside = (k) => junction[k] === 1;
  const boundaries = polylinePath(leftP, leftO, { skip: outside });
  polylinePath(rightP, rightO, { skip: outside, path: boundaries });
  return {
    drivable: polylinePath(dp, doff, { close: true }), crosswalks: polylinePath(cp, coff, { close: true }),
    lanesWide: polylinePath(lp, loff), centerlines: polylinePath(lp, loff, { skip: outside }), boundaries,
    stopLines: decode(map.stop_lines), stopSigns: decode(map.stop_signs),
  };
}

function strokePolyline(ctx, points, from, to, color, width) {
  ctx.beginPath();
  for (let i = from; i < to; i++) { if (i === from) ctx.moveTo(points[2 * i], points[2 * i + 1]); else ctx.lineTo(points[2 * i], points[2 * i + 1]); }
  ctx.strokeStyle = color; ctx.lineWidth = width; ctx.lineJoin = 'round'; ctx.stroke();
}

function drawBox(ctx, x, y, yaw, length, width, color, px, ego = false) {
  ctx.save();
  ctx.translate(x, y); ctx.rotate(yaw);
  ctx.fillStyle = color; ctx.fillRect(-length / 2, -width / 2, length, width);
  ctx.strokeStyle = ego ? '#ffffff' : 'rgba(0,0,0,0.6)'; ctx.lineWidth = px; ctx.strokeRect(-length / 2, -width / 2, length, width);
  ctx.beginPath(); ctx.moveTo(length / 2, 0); ctx.lineTo(length / 2 - Math.min(1.2, length / 2), 0);
  ctx.strokeStyle = 'rgba(0,0,0,0.8)'; ctx.lineWidth = 2 * px; ctx.stroke();
  ctx.restore();
}

function drawCross(ctx, x, y, color, size) {
  ctx.beginPath();
  ctx.moveTo(x - size, y - size); ctx.lineTo(x + size, y + size); ctx.moveTo(x - size, y + size); ctx.lineTo(x + size, y - size);
  ctx.strokeStyle = color; ctx.lineWidth = size / 3; ctx.stroke();
}

// ------------------------------------------------------------------ time series under the scene
const CHART_W = 1000; const CHART_H = 100;
const column = (pairs, k) => pairs.filter((_, i) => i % 2 === k);
const SERIES = [
  { key: 'speed', label: 'speed (m/s)', lines: (s) => s.speed && [s.speed] },
  { key: 'accel', label: 'acceleration (m/s²)', lines: (s) => s.accel && [s.accel] },
  { key: 'steer', label: 'steering (°)', lines: (s) => s.steer && [s.steer.map((v) => (v * 180) / Math.PI)] },
  { key: 'controls', label: 'controls', range: [-1, 1], names: ['steer', 'accel'],
    title: 'executed [steer, accel] in [−1, 1]; accel > 0 is throttle, < 0 brake',
    lines: (s) => s.action && [column(s.action, 0), column(s.action, 1)] },
  { key: 'running_ds', label: 'running driving score', range: [0, 100], lines: (s) => s.runningDs && [s.runningDs] },
];

function svgEl(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

// One chart per quantity some scene has, over the time of the longest scene (B dashed in compare mode).
function renderSeries(scenes) {
  const box = $('#series');
  box.replaceChildren();
  const start = Math.min(...scenes.map((scene) => scene.t[0] || 0));
  const end = Math.max(...scenes.map((scene) => scene.t[scene.frames - 1] || 0), start + 1e-6);
  const toX = (time) => (CHART_W * (time - start)) / (end - start);
  const charts = [];
  for (const spec of SERIES) {
    const sets = scenes.map((scene) => spec.lines(scene) || null);
    if (sets.every((lines) => !lines)) continue;
    let [lo, hi] = spec.range || [Infinity, -Infinity];
    if (!spec.range) {
      for (const lines of sets) for (const values of lines || []) for (const v of values) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (!(hi > lo)) { lo = (Number.isFinite(lo) ? lo : 0) - 1; hi = lo + 2; }
    }
    const toY = (v) => CHART_H - (CHART_H * (Math.min(Math.max(v, lo), hi) - lo)) / (hi - lo);
    const svg = svgEl('svg', { viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': spec.label });
    if (lo < 0 && hi > 0) svg.append(svgEl('line', { class: 'zero', x1: 0, x2: CHART_W, y1: toY(0), y2: toY(0), 'vector-effect': 'non-scaling-stroke' }));
    sets.forEach((lines, k) => (lines || []).forEach((values, j) => {
      const t = scenes[k].t;
      const points = [];
      for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) points.push(`${toX(t[i]).toFixed(2)},${toY(values[i]).toFixed(2)}`);
      svg.append(svgEl('polyline', { class: `s${k} l${j}`, points: points.join(' '), 'vector-effect': 'non-scaling-stroke', 'data-scene': k, 'data-line': j }));
    }));
    const cursor = svgEl('line', { class: 'cursor', x1: 0, x2: 0, y1: 0, y2: CHART_H, 'vector-effect': 'non-scaling-stroke' });
    svg.append(cursor);
    svg.addEventListener('click', (event) => {
      const rect = svg.getBoundingClientRect();
      player.stop();
      player.seek(scenes[0].frameAt(start + ((event.clientX - rect.left) / rect.width) * (end - start)));
    });
    const value = el('span', { class: 'value' });
    box.append(el('figure', { class: 'chart', title: spec.title || spec.label, dataset: { series: spec.key } },
      el('figcaption', {}, el('span', { text: spec.label }), value), svg));
    charts.push({ spec, sets, cursor, value, toX });
  }
  return charts;
}

function updateSeries(charts, scenes, time) {
  for (const chart of charts) {
    const x = chart.toX(time).toFixed(2);
    chart.cursor.setAttribute('x1', x); chart.cursor.setAttribute('x2', x);
    chart.cursor.dataset.time = String(time);
    chart.value.replaceChildren();
    chart.sets.forEach((lines, k) => {
      if (!lines) return;
      const f = scenes[k].frame;
      if (scenes.length > 1) chart.value.append(el('span', { text: k ? ' B ' : 'A ' }));
      lines.forEach((values, j) => {
        const name = chart.spec.names ? `${chart.spec.names[j]} ` : '';
        chart.value.append(el('span', { class: `l${j}`, text: `${name}${Number.isFinite(values[f]) ? values[f].toFixed(2) : '—'} ` }));
      });
    });
  }
}

// ------------------------------------------------------------------ the policy's input: its BEV, per channel
// Frames come from /api/episodes/<id>/bev in blocks, packed as the store keeps them (numpy.packbits, MSB first).
class BevView {
  constructor(scene) {
    const episode = scene.episode;
    this.scene = scene; this.episode = episode;
    this.layout = episode.bev;
    // the ego and the driver's plan over the BEV, where the episode says where the ego is in it
    this.overlay = this.layout.resolution_m !== null && this.layout.ego_row !== null;
    this.block = this.layout.frames_per_request;
    this.blocks = new Map(); this.pending = new Set();
    this.enabled = this.layout.names.map(() => true);
    const [, height, width] = this.layout.shape;
    this.canvas = el('canvas', { class: 'bev', width, height, 'aria-label': `BEV input of ${episode.episode_id}` });
    this.frame = 0;
  }

  panel(prefix) {
    const channels = el('div', { class: 'channels', role: 'group', 'aria-label': 'BEV channels' });
    this.layout.names.forEach((name, c) => {
      const box = el('input', { type: 'checkbox', dataset: { channel: String(c) } });
      box.checked = true;
      box.addEventListener('change', () => { this.enabled[c] = box.checked; this.draw(this.frame); });
      const swatch = el('span', { class: 'swatch' });
      swatch.style.background = this.color(c);
      channels.append(el('label', {}, box, swatch, name));
    });
    if (this.overlay) {
      const box = el('input', { type: 'checkbox', dataset: { overlay: 'plan' } });
      box.checked = true;
      box.addEventListener('change', () => { this.overlay = box.checked; this.draw(this.frame); });
      const swatch = el('span', { class: 'swatch' });
      swatch.style.background = PLAN_COLOR;
      channels.append(el('label', {}, box, swatch, this.scene.plan ? 'ego and plan' : 'ego'));
    }
    const [channelCount, height, width] = this.layout.shape;
    return el('section', { class: 'panel bev-panel' },
      el('h3', { text: `${prefix}policy input: BEV ${channelCount}×${height}×${width}` }), this.canvas, channels);
  }

  color(c) { return BEV_COLORS[this.layout.names[c]] || BEV_OTHER[c % BEV_OTHER.length]; }

  draw(frame) {
    this.frame = frame;
    const first = frame - (frame % this.block);
    if (first + this.block < this.episode.num_steps && (frame % this.block) >= this.block / 2) this.fetch(first + this.block);
    const packed = this.blocks.get(first);
    if (!packed) { this.fetch(first); return; }
    const [channels, height, width] = this.layout.shape;
    const plane = height * width;
    const bytes = Math.ceil((channels * plane) / 8);
    const base = (frame - first) * bytes;
    const ctx = this.canvas.getContext('2d');
    const image = ctx.createImageData(width, height);
    const data = image.data;
    const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const background = rgb(BACKGROUND);
    for (let p = 0; p < plane; p++) { data.set(background, 4 * p); data[4 * p + 3] = 255; }
    for (let c = 0; c < channels; c++) {
      if (!this.enabled[c]) continue;
      const color = rgb(this.color(c));
      for (let p = 0; p < plane; p++) {
        const bit = c * plane + p;
        if ((packed[base + (bit >> 3)] >> (7 - (bit & 7))) & 1) data.set(color, 4 * p);
      }
    }
    ctx.putImageData(image, 0, 0);
    if (this.overlay) this.drawOverlay(ctx, frame, width);
    this.canvas.dataset.overlay = this.overlay ? '1' : '0';
    this.canvas.dataset.frame = String(frame);
    this.canvas.dataset.channels = this.enabled.map((on, c) => (on ? c : null)).filter((c) => c !== null).join(',');
  }

  // Pixel (row, col) lies (ego_row - row) * resolution ahead of the ego and (width / 2 - 0.5 - col) * resolution
  // to its left (sim.scene.bev): the ego as a small box of pixels, the plan's waypoints one pixel each.
  drawOverlay(ctx, frame, width) {
    const { resolution_m: resolution, ego_row: egoRow } = this.layout;
    const scene = this.scene;
    ctx.fillStyle = '#f0883e';
    ctx.fillRect(width / 2 - 1, egoRow - 2, 2, 4);
    if (!scene.plan || !scene.yaw) return;
    const points = scene.plan.shape[1];
    const cos = Math.cos(scene.yaw[frame]); const sin = Math.sin(scene.yaw[frame]);
    ctx.fillStyle = PLAN_COLOR;
    for (let k = 0; k < points; k++) {
      const dx = scene.plan[(frame * points + k) * 2] - scene.x[frame];
      const dy = scene.plan[(frame * points + k) * 2 + 1] - scene.y[frame];
      const row = Math.round(egoRow - (dx * cos + dy * sin) / resolution);
      const col = Math.round(width / 2 - 0.5 - (-dx * sin + dy * cos) / resolution);
      ctx.fillRect(col, row, 1, 1);
    }
  }

  fetch(first) {
    if (this.blocks.has(first) || this.pending.has(first)) return;
    this.pending.add(first);
    const id = encodeURIComponent(this.episode.episode_id);
    api(`/api/episodes/${id}/bev?start=${first}&count=${this.block}`).then((answer) => {
      this.blocks.set(first, decode(answer.frames));
      while (this.blocks.size > 8) this.blocks.delete(this.blocks.keys().next().value);
      const wanted = this.frame - (this.frame % this.block);
      if (wanted === first && player.scenes.some((scene) => scene.bev === this)) this.draw(this.frame);
    }).catch((error) => showError(error.message)).finally(() => this.pending.delete(first));
  }
}

// ------------------------------------------------------------------ player: one clock for one or two scenes
const player = {
  scenes: [], charts: [], frame: 0, playing: false, speed: 1, time: 0, last: null, request: null, route: null,

  load(scenes, route, params) {
    this.stop();
    this.scenes = scenes; this.route = route;
    this.speed = Number(params.get('speed')) || 1;
    $('#speed').value = String(this.speed);
    this.setFollow(params.get('follow') !== '0');
    const zoom = Number(params.get('zoom'));
    if (zoom > 0) for (const scene of scenes) scene.view.scale = zoom;
    const [cx, cy] = [Number(params.get('cx')), Number(params.get('cy'))];
    if (params.has('cx') && params.has('cy') && Number.isFinite(cx) && Number.isFinite(cy)) {
      for (const scene of scenes) {  // the view's centre, map frame
        scene.view.cx = cx - scene.episode.origin[0]; scene.view.cy = cy - scene.episode.origin[1];
      }
    }
    const primary = scenes[0];
    $('#scrubber').max = String(Math.max(primary.frames - 1, 0));
    renderMarkers(scenes);
    renderPanels(scenes);
    this.charts = renderSeries(scenes);
    this.seek(Math.min(Math.max(Number(params.get('f')) || 0, 0), primary.frames - 1));
  },

  seek(frame, { updateUrl = true } = {}) {
    const primary = this.scenes[0];
    if (!primary) return;
    this.frame = Math.min(Math.max(Math.round(frame), 0), primary.frames - 1);
    this.time = primary.t[this.frame];
    this.redraw();
    if (updateUrl) this.saveUrl();
  },

  redraw() {
    const primary = this.scenes[0];
    if (!primary) return;
    for (const scene of this.scenes) scene.draw(scene === primary ? this.frame : scene.frameAt(this.time));
    $('#scrubber').value = String(this.frame);
    const counter = $('#frame-counter');
    counter.dataset.frame = String(this.frame);
    const others = this.scenes.slice(1).map((scene) => ` | ${scene.frame + 1} / ${scene.frames}`).join('');
    counter.textContent = `frame ${this.frame + 1} / ${primary.frames}${others} · ${this.time.toFixed(2)} s`;
    updatePanels(this.scenes);
    updateSeries(this.charts, this.scenes, this.time);
    for (const scene of this.scenes) if (scene.bev) scene.bev.draw(scene.frame);
  },

  saveUrl() {
    if (!this.route) return;
    const params = new URLSearchParams();
    params.set('f', String(this.frame));
    if (this.speed !== 1) params.set('speed', String(this.speed));
    const primary = this.scenes[0];
    if (!primary.follow) {
      params.set('follow', '0');
      params.set('cx', (primary.view.cx + primary.episode.origin[0]).toFixed(1));
      params.set('cy', (primary.view.cy + primary.episode.origin[1]).toFixed(1));
    }
    params.set('zoom', primary.view.scale.toFixed(2));
    setHash(this.route.view, this.route.args, params, { replace: true });
  },

  play() {
    const primary = this.scenes[0];
    if (!primary || this.playing) return;
    const end = Math.max(...this.scenes.map((scene) => scene.t[scene.frames - 1] || 0));
    if (this.time >= end) this.seek(0, { updateUrl: false });
    this.playing = true; this.last = null;
    $('#play').textContent = '▮▮';
    const tick = (now) => {
      if (!this.playing) return;
      if (this.last !== null) {
        // in compare mode, play on until the longer episode ends
        const end = Math.max(...this.scenes.map((scene) => scene.t[scene.frames - 1] || 0));
        this.time = Math.min(this.time + ((now - this.last) / 1000) * this.speed, end);
        const frame = primary.frameAt(this.time);
        const changed = frame !== this.frame || this.scenes.some((scene, k) => k && scene.frameAt(this.time) !== scene.frame);
        this.frame = frame;
        if (changed) this.redraw();
        if (this.time >= end) { this.stop(); return; }
      }
      this.last = now;
      this.request = requestAnimationFrame(tick);
    };
    this.request = requestAnimationFrame(tick);
  },

  stop() {
    if (this.request !== null) cancelAnimationFrame(this.request);
    this.request = null;
    const wasPlaying = this.playing;
    this.playing = false;
    $('#play').textContent = '▶';
    if (wasPlaying) this.saveUrl();
  },

  toggle() { if (this.playing) this.stop(); else this.play(); },
  step(delta) { this.stop(); this.seek(this.frame + delta); },
  setSpeed(speed) { this.speed = speed; $('#speed').value = String(speed); this.saveUrl(); },
  setFollow(follow) {
    for (const scene of this.scenes) scene.follow = follow;
    $('#follow').checked = follow;
  },
  zoom(factor) {
    for (const scene of this.scenes) scene.view.scale = Math.min(Math.max(scene.view.scale * factor, 0.05), 80);
    this.redraw();
  },
};

function renderMarkers(scenes) {
  const markers = $('#markers');
  markers.replaceChildren();
  $('#timeline').classList.toggle('two', scenes.length > 1);
  const primary = scenes[0];
  const span = Math.max(primary.frames - 1, 1);
  scenes.forEach((scene, index) => {
    for (const event of scene.episode.events) {
      const frame = index === 0 ? event.step : primary.frameAt(event.time_s);
      const kind = event.kind.startsWith('trigger:') ? 'trigger' : event.kind === 'intervention' ? 'intervention' : 'infraction';
      const button = el('button', {
        type: 'button', class: `marker ${kind}${index ? ' second' : ''}`,
        title: `${index ? 'B: ' : ''}${event.kind} at ${event.time_s.toFixed(2)} s (frame ${frame + 1})`,
        'aria-label': `${event.kind} at frame ${frame + 1}`, dataset: { frame: String(frame), kind: event.kind },
      });
      button.style.left = `${(100 * frame) / span}%`;
      button.addEventListener('click', () => { player.stop(); player.seek(frame); });
      markers.append(button);
    }
  });
}

function metricRow(dl, name, value) {
  dl.append(el('dt', { text: name }), el('dd', { text: value }));
}

function renderPanels(scenes) {
  const panels = $('#panels');
  panels.replaceChildren();
  scenes.forEach((scene, index) => {
    const episode = scene.episode;
    const live = el('dl', { class: 'live' });
    const controls = el('div', { class: 'controls' });
    const events = el('ul', { class: 'events' });
    for (const event of episode.events) {
      const frame = index === 0 ? event.step : scenes[0].frameAt(event.time_s);
      const detail = event.actor_id ? ` (actor ${event.actor_id})` : '';
      events.append(el('li', {}, el('button', {
        type: 'button', text: `${event.time_s.toFixed(2)} s  ${event.kind}${detail}`, dataset: { step: String(event.step) },
        onclick: () => { player.stop(); player.seek(frame); },
      })));
    }
    if (!episode.events.length) events.append(el('li', { class: 'future', text: 'no events' }));
    const about = el('dl');
    const summary = episode.summary;
    metricRow(about, 'source', `${episode.source} · ${episode.date}`);
    metricRow(about, 'map', fmt(episode.map_name));
    metricRow(about, 'policy', fmt(summary.policy));
    metricRow(about, 'outcome', fmt(summary.outcome));
    metricRow(about, 'driving score', fmt(summary.driving_score));
    metricRow(about, 'route completion', summary.route_completion == null ? '—' : `${summary.route_completion.toFixed(1)} %`);
    metricRow(about, 'duration', `${fmt(summary.duration_s)} s · ${episode.num_steps} steps`);
    panels.append(el('section', { class: 'panel', dataset: { scene: String(index) } },
      el('h3', { text: `${scenes.length > 1 ? (index ? 'B: ' : 'A: ') : ''}${episode.episode_id}` }),
      about, el('h3', { text: 'now' }), live, controls, el('h3', { text: 'events' }), events,
      el('details', {}, el('summary', { text: 'metadata' }), el('pre', { class: 'metadata', text: JSON.stringify(episode.metadata, null, 1) }))));
    scene.panel = { live, controls, events };
    scene.bev = episode.bev ? new BevView(scene) : null;
    if (scene.bev) panels.append(scene.bev.panel(scenes.length > 1 ? (index ? 'B: ' : 'A: ') : ''));
  });
  if (scenes.length === 2) panels.prepend(compareTable(scenes[0].episode, scenes[1].episode));
  else sameScenario(scenes[0].episode).catch((error) => showError(error.message));
}

// Other episodes of the same map and seed (e.g. champion and challenger on one evaluation route): compare links.
async function sameScenario(episode) {
  const seed = episode.summary.traffic_seed;
  if (seed === null || seed === undefined || !episode.map_name) return;
  const query = new URLSearchParams({ seed: String(seed), map: episode.map_name, page_size: '20', sort: 'date', order: 'desc' });
  const result = await api(`/api/episodes?${query}`);
  const others = result.rows.filter((row) => row.episode_id !== episode.episode_id);
  const list = el('ul', { class: 'events', id: 'same-scenario' });
  for (const row of others) {
    const href = `#/compare/${encodeURIComponent(episode.episode_id)}/${encodeURIComponent(row.episode_id)}`;
    list.append(el('li', {}, el('a', { href, text: `${row.episode_id}` }),
      ` · ${fmt(row.model)} · DS ${fmt(row.driving_score)}`));
  }
  if (!others.length) list.append(el('li', { class: 'future', text: 'no other episode of this map and seed' }));
  if (!player.scenes.length || player.scenes[0].episode !== episode) return;  // another view is shown by now
  $('#panels').append(el('section', { class: 'panel' }, el('h3', { text: `same scenario (seed ${seed}): compare with` }), list));
}

function compareTable(a, b) {
  const table = el('table', { class: 'diff', id: 'compare-metrics' });
  table.append(el('tr', {}, el('th', { text: 'metric' }), el('th', { text: 'A' }), el('th', { text: 'B' }), el('th', { text: 'B − A' })));
  const higherIsBetter = { driving_score: true, route_completion: true, infraction_penalty: true, driven_m: true };
  const rows = ['driving_score', 'route_completion', 'infraction_penalty', 'driven_m', 'duration_s'];
  const kinds = new Set([...Object.keys(a.summary.infractions), ...Object.keys(b.summary.infractions)]);
  const value = (episode, key) => (key.startsWith('infraction:') ? episode.summary.infractions[key.slice(11)] || 0 : episode.summary[key]);
  for (const key of [...rows, ...[...kinds].sort().map((kind) => `infraction:${kind}`)]) {
    const va = value(a, key); const vb = value(b, key);
    const diff = typeof va === 'number' && typeof vb === 'number' ? vb - va : null;
    const cell = el('td', { class: 'num', text: diff === null ? '—' : (diff > 0 ? '+' : '') + fmt(diff, 2) });
    if (diff) {
      const better = key.startsWith('infraction:') ? diff < 0 : higherIsBetter[key] ? diff > 0 : null;
      if (better !== null && better !== undefined) cell.classList.add(better ? 'better' : 'worse');
    }
    const label = key.startsWith('infraction:') ? `# ${key.slice(11)}` : key.replace(/_/g, ' ');
    table.append(el('tr', { dataset: { metric: key } }, el('td', { text: label }), el('td', { class: 'num', text: fmt(va, 2) }),
      el('td', { class: 'num', text: fmt(vb, 2) }), cell));
  }
  table.append(el('tr', {}, el('td', { text: 'outcome' }), el('td', { text: fmt(a.summary.outcome) }),
    el('td', { text: fmt(b.summary.outcome) }), el('td', { text: a.summary.outcome === b.summary.outcome ? 'same' : 'differs' })));
  return el('section', { class: 'panel' }, el('h3', { text: 'A vs B' }), table);
}

function updatePanels(scenes) {
  for (const scene of scenes) {
    if (!scene.panel) continue;
    const f = scene.frame;
    const { live, controls } = scene.panel;
    live.replaceChildren();
    metricRow(live, 'time', `${(scene.t[f] || 0).toFixed(2)} s (frame ${f + 1} / ${scene.frames})`);
    if (scene.speed) metricRow(live, 'speed', `${scene.speed[f].toFixed(2)} m/s · ${(scene.speed[f] * 3.6).toFixed(1)} km/h`);
    if (scene.accel) metricRow(live, 'accel', `${scene.accel[f].toFixed(2)} m/s²`);
    if (scene.steer) metricRow(live, 'steer', `${(scene.steer[f] * 180 / Math.PI).toFixed(1)}°`);
    if (scene.completion) metricRow(live, 'route progress', `${scene.completion[f].toFixed(1)} %`);
    if (scene.runningDs) metricRow(live, 'running DS', scene.runningDs[f].toFixed(1));
    controls.replaceChildren();
    if (scene.action) {
      for (const [name, value] of [['steer', scene.action[2 * f]], ['accel', scene.action[2 * f + 1]]]) {
        const bar = el('span');
        bar.style.left = `${50 + Math.min(value, 0) * 50}%`; bar.style.width = `${Math.abs(value) * 50}%`;
        controls.append(el('div', { text: `${name} ${value.toFixed(2)}` }), el('div', { class: 'bar-meter' }, bar));
      }
    }
    for (const button of scene.panel.events.querySelectorAll('button')) {
      button.classList.toggle('future', Number(button.dataset.step) > f);
    }
  }
}

// ------------------------------------------------------------------ replay and compare views
async function loadScene(episodeId, stage) {
  const episode = await api(`/api/episodes/${encodeURIComponent(episodeId)}`);
  let map = null;
  if (episode.map_name) {
    try {
      map = await api(`/api/maps/${encodeURIComponent(episode.map_name)}`);
    } catch (error) {
      showError(`${error.message} (drawing ${episodeId} without its map)`);
    }
  }
  const canvas = el('canvas', { 'aria-label': `top-down view of ${episodeId}` });
  stage.replaceChildren(el('h2', { text: episodeId }), canvas);
  return new Scene(canvas, episode, map);
}

async function showReplay(route) {
  $('#browser-view').hidden = true;
  $('#replay-view').hidden = false;
  player.stop();
  const ids = route.args.slice(0, route.view === 'compare' ? 2 : 1);
  if (ids.length !== (route.view === 'compare' ? 2 : 1)) throw new Error(`#/${route.view}: missing episode id(s)`);
  $('#breadcrumb').textContent = route.view === 'compare' ? `compare ${ids[0]} vs ${ids[1]}` : ids[0];
  const stages = $('#stages');
  stages.replaceChildren(...ids.map((id) => el('div', { class: 'stage', dataset: { episodeId: id } }, el('h2', { text: `loading ${id}…` }))));
  // (what the last episode showed goes at once: a load that fails must not leave it beside the error)
  $('#panels').replaceChildren();
  $('#markers').replaceChildren();
  $('#series').replaceChildren();
  player.scenes = []; player.charts = [];
  const loaded = await Promise.allSettled(ids.map((id, k) => loadScene(id, stages.children[k])));
  const failed = loaded.map((result, k) => [result, ids[k], stages.children[k]]).filter(([result]) => result.status === 'rejected');
  for (const [result, id, stage] of failed) {
    stage.replaceChildren(el('h2', { text: `${id}: not loaded` }), el('p', { class: 'failed', text: result.reason.message }));
  }
  if (failed.length) throw failed[0][0].reason;
  player.load(loaded.map((result) => result.value), route, route.params);
}

// ------------------------------------------------------------------ routing and wiring
let routing = Promise.resolve();
function route() {
  routing = routing.then(async () => {
    clearError();
    const current = parseHash();
    try {
      if (current.view === 'episode' || current.view === 'compare') await showReplay(current);
      else await showBrowser(current.params);
    } catch (error) {
      showError(error.message);
    }
  });
}

function wire() {
  $('#error-close').addEventListener('click', clearError);
  $('#filters').addEventListener('change', (event) => {
    if (event.target.name) navigateBrowser({ [event.target.name]: event.target.value, page: '' });
  });
  $('#filters').addEventListener('submit', (event) => event.preventDefault());
  $('#clear-filters').addEventListener('click', () => setHash('episodes', [], new URLSearchParams()));
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.addEventListener('click', () => {
      const params = browserParams();
      const same = (params.get('sort') || 'episode_id') === th.dataset.sort;
      navigateBrowser({ sort: th.dataset.sort, order: same && params.get('order') !== 'desc' ? 'desc' : 'asc', page: '' });
    });
  }
  const page = (delta) => navigateBrowser({ page: String(Math.max(1, (Number(browserParams().get('page')) || 1) + delta)) });
  $('#prev-page').addEventListener('click', () => page(-1));
  $('#next-page').addEventListener('click', () => page(1));
  $('#page-size').addEventListener('change', (event) => navigateBrowser({ page_size: event.target.value, page: '' }));
  $('#compare-selected').addEventListener('click', () => {
    const [a, b] = [...browser.selected];
    setHash('compare', [a, b], new URLSearchParams());
  });
  $('#play').addEventListener('click', () => player.toggle());
  $('#step-back').addEventListener('click', () => player.step(-1));
  $('#step-forward').addEventListener('click', () => player.step(1));
  $('#speed').addEventListener('change', (event) => player.setSpeed(Number(event.target.value)));
  $('#follow').addEventListener('change', (event) => { player.setFollow(event.target.checked); player.redraw(); player.saveUrl(); });
  $('#scrubber').addEventListener('input', (event) => { player.stop(); player.seek(Number(event.target.value)); });
  window.addEventListener('resize', () => player.redraw());
  document.addEventListener('keydown', (event) => {
    if ($('#replay-view').hidden || event.target.matches('input[type=search], select')) return;
    const speeds = [0.25, 0.5, 1, 2, 4, 8];
    const at = speeds.indexOf(player.speed);
    const actions = {
      ' ': () => player.toggle(),
      ArrowRight: () => player.step(event.shiftKey ? 10 : 1),
      ArrowLeft: () => player.step(event.shiftKey ? -10 : -1),
      ']': () => player.setSpeed(speeds[Math.min(at + 1, speeds.length - 1)]),
      '[': () => player.setSpeed(speeds[Math.max(at - 1, 0)]),
      f: () => { player.setFollow(!$('#follow').checked); player.redraw(); },
      '+': () => player.zoom(1.25), '=': () => player.zoom(1.25), '-': () => player.zoom(0.8),
      Home: () => player.step(-Infinity), End: () => player.step(Infinity),
    };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });
  window.addEventListener('hashchange', route);
  route();
  api('/api/info').then((info) => {
    $('#store-info').textContent = `${info.store} · ${info.episodes} episode${info.episodes === 1 ? '' : 's'}`;
  }).catch((error) => showError(error.message));
}

document.addEventListener('DOMContentLoaded', wire);

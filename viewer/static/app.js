// The live view: polls the JSON endpoints and draws the map, the incidents, a sensor's story and
// the run's health on canvases. No library, nothing loaded from elsewhere.
"use strict";

// US EPA AQI categories: the AQI each starts at, name, colour.
const CATEGORIES = [
  [0, "Good", "#00e400"],
  [51, "Moderate", "#ffff00"],
  [101, "Unhealthy for sensitive groups", "#ff7e00"],
  [151, "Unhealthy", "#ff0000"],
  [201, "Very unhealthy", "#8f3f97"],
  [301, "Hazardous", "#7e0023"],
];
const NO_AQI = "#9aa0a6";
// PM2.5 breakpoints (µg/m³, 2024) to AQI, for a reading without the flow's AQI.
const BREAKPOINTS = [
  [0.0, 9.0, 0, 50], [9.1, 35.4, 51, 100], [35.5, 55.4, 101, 150],
  [55.5, 125.4, 151, 200], [125.5, 225.4, 201, 300], [225.5, 325.4, 301, 500],
];
const MARKS = {
  sensor_fault: "fault", pollution_event: "area event", local_source: "local source",
  anomaly: "anomaly", offline: "offline",
};

const token = new URLSearchParams(location.search).get("token");
const state = {
  config: { poll: 5, tiles: null },
  sensors: [], byId: new Map(), newest: null, incidents: [], health: null,
  view: null, highlight: new Set(), story: null, storySensor: null, storyEnd: null,
  refreshes: 0,
};

function el(id) { return document.getElementById(id); }

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function aqiOf(pm) {
  if (pm == null) return null;
  const c = Math.floor(pm * 10) / 10;
  for (const [cl, ch, il, ih] of BREAKPOINTS) {
    if (c <= ch) return Math.round(((ih - il) / (ch - cl)) * (Math.max(c, cl) - cl) + il);
  }
  return 500;
}

function category(aqi) {
  if (aqi == null) return null;
  let found = CATEGORIES[0];
  for (const c of CATEGORIES) if (Math.round(aqi) >= c[0]) found = c;
  return found;
}

function colour(aqi) { const c = category(aqi); return c ? c[2] : NO_AQI; }

function fmtTime(iso) { return iso ? iso.replace("T", " ").replace("Z", " UTC") : "—"; }

function ago(iso, now) {
  if (!iso || !now) return "";
  const s = (Date.parse(now) - Date.parse(iso)) / 1000;
  if (s < 90) return `${Math.round(s)} s before the newest reading`;
  if (s < 5400) return `${Math.round(s / 60)} min before the newest reading`;
  return `${(s / 3600).toFixed(1)} h before the newest reading`;
}

function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return [ctx, w, h];
}

// --- the map: Web Mercator in world units [0, 1], so map tiles line up when asked for ---------

function mercator(lat, lon) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

function fitView(points, w, h) {
  if (!points.length) return { cx: 0.5, cy: 0.5, scale: 256 };
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const span = Math.max(x1 - x0, (y1 - y0) * (w / h), 1e-6);
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: (w * 0.85) / span };
}

function toScreen(view, w, h, x, y) {
  return [w / 2 + (x - view.cx) * view.scale, h / 2 + (y - view.cy) * view.scale];
}

function project(sensorIndex) {
  const s = state.byId.get(sensorIndex);
  const canvas = el("map");
  if (!s || !state.view || s.x == null) return null;
  return toScreen(state.view, canvas.clientWidth, canvas.clientHeight, s.x, s.y);
}

const tiles = new Map();
function drawTiles(ctx, w, h) {
  const template = state.config.tiles, view = state.view;
  if (!template) return;
  const z = Math.max(0, Math.min(19, Math.round(Math.log2(view.scale / 256))));
  const n = 2 ** z, size = view.scale / n;
  const [left, top] = [view.cx - w / 2 / view.scale, view.cy - h / 2 / view.scale];
  for (let tx = Math.floor(left * n); tx <= Math.floor((left + w / view.scale) * n); tx++) {
    for (let ty = Math.floor(top * n); ty <= Math.floor((top + h / view.scale) * n); ty++) {
      if (ty < 0 || ty >= n) continue;
      const url = template.replace("{z}", z).replace("{x}", ((tx % n) + n) % n).replace("{y}", ty);
      let img = tiles.get(url);
      if (!img) {
        img = new Image();
        img.onload = () => drawMap();
        img.src = url;
        tiles.set(url, img);
      }
      if (img.complete && img.naturalWidth) {
        const [sx, sy] = toScreen(view, w, h, tx / n, ty / n);
        ctx.drawImage(img, sx, sy, size + 0.5, size + 0.5);
      }
    }
  }
}

function drawGraticule(ctx, w, h) {
  // lines every 0.1, 0.5, 1 or 5 degrees, whichever gives a few on screen
  const view = state.view;
  const degPx = view.scale / 360;
  const step = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30].find((s) => s * degPx > 80) || 30;
  ctx.strokeStyle = "rgba(60,80,100,.18)";
  ctx.fillStyle = "rgba(40,55,70,.6)";
  ctx.font = "11px system-ui";
  ctx.lineWidth = 1;
  const lonAt = (px) => ((view.cx + (px - w / 2) / view.scale) * 360) - 180;
  for (let lon = Math.ceil(lonAt(0) / step) * step; lon < lonAt(w); lon += step) {
    const [x] = toScreen(view, w, h, (lon + 180) / 360, 0);
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.stroke();
    ctx.fillText(lon.toFixed(2) + "°", x + 2, h - 4);
  }
  const latAt = (py) => {
    const y = view.cy + (py - h / 2) / view.scale;
    return (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  };
  for (let lat = Math.ceil(latAt(h) / step) * step; lat < latAt(0); lat += step) {
    const [, y] = toScreen(view, w, h, 0, mercator(lat, 0)[1]);
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(lat.toFixed(2) + "°", 2, y - 2);
  }
}

function markKind(s) {
  if (s.offline) return "offline";
  for (const k of ["sensor_fault", "pollution_event", "local_source", "anomaly"]) {
    if (s.kinds.includes(k)) return k;
  }
  return null;
}

function drawMarker(ctx, x, y, s) {
  const mark = markKind(s);
  const r = 6;
  if (mark === "pollution_event") {
    ctx.beginPath(); ctx.arc(x, y, r + 5, 0, 2 * Math.PI);
    ctx.strokeStyle = "#8f3f97"; ctx.lineWidth = 3; ctx.stroke();
  }
  ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fillStyle = mark === "offline" ? "#ffffff" : colour(s.aqi);
  ctx.fill();
  ctx.lineWidth = 1; ctx.strokeStyle = "#333";
  if (mark === "offline") { ctx.setLineDash([2, 2]); ctx.strokeStyle = "#777"; }
  ctx.stroke(); ctx.setLineDash([]);
  if (mark === "sensor_fault") {
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
    ctx.strokeRect(x - r - 3, y - r - 3, 2 * r + 6, 2 * r + 6);
  } else if (mark === "local_source") {
    ctx.beginPath(); ctx.moveTo(x, y - r - 9); ctx.lineTo(x - 5, y - r - 2); ctx.lineTo(x + 5, y - r - 2);
    ctx.closePath(); ctx.fillStyle = "#1e6fd9"; ctx.fill();
  } else if (mark === "anomaly") {
    ctx.strokeStyle = "#c0392b"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(x, y, r + 3, 0, 2 * Math.PI); ctx.stroke();
  }
  if (state.highlight.has(s.sensor_index) || state.storySensor === s.sensor_index) {
    ctx.strokeStyle = "#0b3d91"; ctx.lineWidth = 3;
    ctx.beginPath(); ctx.arc(x, y, r + 8, 0, 2 * Math.PI); ctx.stroke();
  }
}

function drawMap() {
  const canvas = el("map");
  const [ctx, w, h] = fit(canvas);
  const placed = state.sensors.filter((s) => s.x != null);
  if (!state.view && placed.length) state.view = fitView(placed.map((s) => [s.x, s.y]), w, h);
  ctx.clearRect(0, 0, w, h);
  if (!state.view) {
    ctx.fillStyle = "#5b6575"; ctx.font = "14px system-ui";
    ctx.fillText("no sensors yet (the flow writes its readings table here)", 16, 24);
    canvas.dataset.markers = "0";
    return;
  }
  drawTiles(ctx, w, h);
  drawGraticule(ctx, w, h);
  let drawn = 0;
  // the marked ones last, so they are on top
  const order = placed.slice().sort((a, b) => (markKind(a) ? 1 : 0) - (markKind(b) ? 1 : 0));
  for (const s of order) {
    const [x, y] = toScreen(state.view, w, h, s.x, s.y);
    if (x < -20 || y < -20 || x > w + 20 || y > h + 20) continue;
    drawMarker(ctx, x, y, s);
    drawn++;
  }
  canvas.dataset.markers = String(placed.length);
  canvas.dataset.drawn = String(drawn);
}

function drawLegend() {
  const parts = CATEGORIES.map(
    ([, name, c]) => `<span><i class="swatch" style="background:${c}"></i>${name}</span>`
  );
  parts.push(`<span><i class="swatch" style="background:${NO_AQI}"></i>no AQI yet</span>`);
  parts.push('<span>□ fault</span><span style="color:#8f3f97">◯ area event</span>');
  parts.push('<span style="color:#1e6fd9">▲ local source</span>');
  parts.push('<span style="color:#c0392b">◯ anomaly</span><span>◌ offline</span>');
  el("legend").innerHTML = parts.join("");
}

function mapEvents() {
  const canvas = el("map");
  let drag = null, moved = false;
  canvas.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; moved = false; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag || !state.view) return;
    const dx = e.clientX - drag[0], dy = e.clientY - drag[1];
    if (Math.abs(dx) + Math.abs(dy) > 2) moved = true;
    state.view.cx -= dx / state.view.scale; state.view.cy -= dy / state.view.scale;
    drag = [e.clientX, e.clientY];
    drawMap();
  });
  canvas.addEventListener("wheel", (e) => {
    if (!state.view) return;
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top, w = rect.width, h = rect.height;
    const factor = e.deltaY < 0 ? 1.25 : 0.8;
    const wx = state.view.cx + (px - w / 2) / state.view.scale;
    const wy = state.view.cy + (py - h / 2) / state.view.scale;
    state.view.scale *= factor;
    state.view.cx = wx - (px - w / 2) / state.view.scale;
    state.view.cy = wy - (py - h / 2) / state.view.scale;
    drawMap();
  }, { passive: false });
  canvas.addEventListener("click", (e) => {
    if (moved || !state.view) return;
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    let best = null, bestD = 12 * 12;
    for (const s of state.sensors) {
      const p = project(s.sensor_index);
      if (!p) continue;
      const d = (p[0] - px) ** 2 + (p[1] - py) ** 2;
      if (d < bestD) { best = s; bestD = d; }
    }
    if (best) openSensor(best.sensor_index);
  });
  canvas.addEventListener("mousemove", (e) => {
    if (drag || !state.view) return;
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    let title = "";
    for (const s of state.sensors) {
      const p = project(s.sensor_index);
      if (p && (p[0] - px) ** 2 + (p[1] - py) ** 2 < 64) {
        const mark = markKind(s);
        title = `sensor ${s.sensor_index}: PM2.5 (EPA) ${s.pm == null ? "—" : s.pm.toFixed(1)} µg/m³,`
          + ` AQI ${s.aqi == null ? "—" : Math.round(s.aqi)}${mark ? ", " + MARKS[mark] : ""}`;
        break;
      }
    }
    canvas.title = title;
  });
  window.addEventListener("resize", () => { drawMap(); if (state.story) drawStory(); });
  el("show-all").addEventListener("click", () => {
    state.view = null; state.highlight = new Set(); el("area").hidden = true; drawMap();
  });
}

// --- incidents -------------------------------------------------------------------------------

function renderIncidents(data) {
  const key = JSON.stringify(data) + state.newest;
  if (key === state.incidentsKey) return;  // unchanged: the list (and its selection) stays
  state.incidentsKey = key;
  const list = el("incidents");
  state.incidents = data.incidents;
  el("incident-count").textContent = data.available ? `(${data.open})` : "";
  if (!data.available) {
    list.innerHTML = '<li class="empty">No incidents table in this database (the flow writes '
      + "one when its incidents output is a database).</li>";
    return;
  }
  if (!data.incidents.length) {
    list.innerHTML = '<li class="empty">None open.</li>';
    return;
  }
  list.replaceChildren(...data.incidents.map((i) => {
    const li = document.createElement("li");
    li.dataset.id = i.id;
    li.dataset.kind = i.kind;
    if (i.sensor_index != null) li.dataset.sensor = i.sensor_index;
    const who = i.sensor_index != null ? `sensor ${i.sensor_index}`
      : `area ${i.area} · ${(i.sensors || []).length} sensors`;
    li.innerHTML = `<span class="kind ${i.kind}"></span><b class="who"></b>
      <div class="reasons"></div><div class="since"></div>`;
    li.querySelector(".kind").textContent = i.kind.replace("_", " ");
    li.querySelector(".who").textContent = who;
    li.querySelector(".reasons").textContent = (i.reasons || []).join(", ");
    li.querySelector(".since").textContent =
      `since ${fmtTime(i.started)} (${ago(i.started, state.newest)})`;
    li.addEventListener("click", () => openIncident(i, li));
    return li;
  }));
}

function openIncident(incident, li) {
  document.querySelectorAll(".incidents li.selected").forEach((x) => x.classList.remove("selected"));
  if (li) li.classList.add("selected");
  if (incident.sensor_index != null) {
    state.highlight = new Set();
    openSensor(incident.sensor_index);
    return;
  }
  // an area: its sensors highlighted and framed on the map, listed to open one
  const sensors = incident.sensors || [];
  state.highlight = new Set(sensors);
  const points = sensors.map((id) => state.byId.get(id)).filter((s) => s && s.x != null);
  const canvas = el("map");
  if (points.length) {
    state.view = fitView(points.map((s) => [s.x, s.y]), canvas.clientWidth, canvas.clientHeight);
    state.view.scale = Math.min(state.view.scale, 2 ** 22);
  }
  const area = el("area");
  area.hidden = false;
  area.innerHTML = `<b></b><div class="sensors"></div>`;
  area.querySelector("b").textContent = `Area ${incident.area}: ${incident.kind.replace("_", " ")}`;
  const box = area.querySelector(".sensors");
  for (const id of sensors) {
    const a = document.createElement("button");
    a.type = "button";
    a.textContent = `sensor ${id}`;
    a.addEventListener("click", () => openSensor(id));
    box.append(a, " ");
  }
  drawMap();
}

// --- a sensor's story ------------------------------------------------------------------------

async function openSensor(id, end) {
  state.storySensor = id;
  state.storyEnd = end || null;
  el("story-view").hidden = false;
  el("story-title").textContent = `Sensor ${id}`;
  drawMap();
  await loadStory();
  el("story-view").scrollIntoView({ block: "nearest" });
}

async function loadStory() {
  const id = state.storySensor;
  if (id == null) return;
  const span = Number(el("span").value);
  const width = Math.max(200, Math.min(5000, el("pm-chart").clientWidth || 800));
  let query = `points=${Math.round(width)}`;
  if (state.storyEnd) {
    const start = new Date(Date.parse(state.storyEnd) - span * 1000).toISOString();
    query += `&start=${encodeURIComponent(start)}&end=${encodeURIComponent(state.storyEnd)}`;
  } else {
    const last = state.byId.get(id);
    if (last && last.time) {
      const start = new Date(Date.parse(last.time) - span * 1000).toISOString();
      query += `&start=${encodeURIComponent(start)}&end=${encodeURIComponent(last.time)}`;
    }
  }
  try {
    state.story = await api(`/api/sensors/${id}?${query}`);
    el("story-note").textContent = `${fmtTime(state.story.start)} → ${fmtTime(state.story.end)}, `
      + `${state.story.readings} readings` + (state.story.bucket_seconds
        ? `, averaged over ${Math.round(state.story.bucket_seconds / 60)} min` : "");
  } catch (err) {
    state.story = null;
    el("story-note").textContent = String(err.message || err);
  }
  drawStory();
}

const SERIES = [
  ["a", "channel A (raw)", "#f0a35e", 1],
  ["b", "channel B (raw)", "#b48ad8", 1],
  ["pm2_5_cf_1", "cleaned PM2.5", "#1f4e9c", 2],
  ["pm2_5_epa", "EPA-corrected PM2.5", "#1b9e5a", 2],
  ["nowcast", "NowCast", "#222", 1.5],
];

function axes(ctx, box, t0, t1, y0, y1, unit) {
  ctx.strokeStyle = "#c8cfd9"; ctx.fillStyle = "#3a4456"; ctx.font = "11px system-ui";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4, y = box.y + box.h - (box.h * i) / 4;
    ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke();
    ctx.fillText(v.toFixed(v < 10 ? 1 : 0), 4, y + 4);
  }
  ctx.fillText(unit, 4, box.y - 6);
  const span = t1 - t0;
  const step = [600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400]
    .find((s) => (box.w * s) / span > 90) || 7 * 86400;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const x = box.x + ((t - t0) / span) * box.w;
    ctx.beginPath(); ctx.moveTo(x, box.y); ctx.lineTo(x, box.y + box.h); ctx.stroke();
    const d = new Date(t * 1000).toISOString();
    ctx.fillText(step >= 86400 ? d.slice(5, 10) : d.slice(11, 16), x - 14, box.y + box.h + 14);
  }
}

function shade(ctx, box, t0, t1, from, to, fill) {
  const x0 = box.x + Math.max(0, (from - t0) / (t1 - t0)) * box.w;
  const x1 = box.x + Math.min(1, (to - t0) / (t1 - t0)) * box.w;
  if (x1 > x0) { ctx.fillStyle = fill; ctx.fillRect(x0, box.y, Math.max(2, x1 - x0), box.h); }
}

function drawStory() {
  const story = state.story;
  const pm = el("pm-chart"), aq = el("aqi-chart");
  const [ctx, w, h] = fit(pm);
  const [actx, aw, ah] = fit(aq);
  ctx.clearRect(0, 0, w, h); actx.clearRect(0, 0, aw, ah);
  if (!story) { pm.dataset.points = "0"; return; }
  const secs = (iso) => Date.parse(iso) / 1000;
  const t0 = secs(story.start), t1 = secs(story.end);
  const rows = story.series;
  // the scale of the unflagged readings: a flagged spike is drawn at the top edge
  let ymax = 5;
  for (const r of rows) {
    if (r.flagged && !story.bucket_seconds) continue;
    for (const [k] of SERIES) if (r[k] != null) ymax = Math.max(ymax, r[k]);
  }
  ymax *= 1.1;
  const box = { x: 40, y: 16, w: w - 50, h: h - 36 };
  const X = (t) => box.x + ((t - t0) / (t1 - t0)) * box.w;
  const Y = (v) => box.y + box.h - (Math.min(v, ymax) / ymax) * box.h;
  // incident spans, alerts' times and gaps shaded behind the lines
  for (const i of story.incidents) {
    shade(ctx, box, t0, t1, secs(i.started), i.end ? secs(i.end) : t1, "rgba(231,76,60,.13)");
  }
  for (const g of story.gaps) {
    shade(ctx, box, t0, t1, secs(g.last_seen), g.time ? secs(g.time) : t1, "rgba(120,120,120,.18)");
  }
  axes(ctx, box, t0, t1, 0, ymax, "PM2.5 µg/m³");
  for (const a of story.alerts) {
    const x = X(secs(a.time));
    ctx.fillStyle = a.kind === "sensor_fault" ? "rgba(0,0,0,.55)" : "rgba(192,57,43,.7)";
    ctx.fillRect(x - 1, box.y + box.h - 8, 2, 8);
  }
  for (const [key, , c, width] of SERIES) {
    ctx.strokeStyle = c; ctx.lineWidth = width;
    ctx.setLineDash(key === "nowcast" ? [5, 3] : []);
    ctx.beginPath();
    let pen = false, last = null;
    for (const r of rows) {
      const v = r[key], t = secs(r.time);
      if (v == null || (last != null && t - last > Math.max(900, 3 * (story.bucket_seconds || 0)))) {
        pen = false;
      }
      if (v == null) continue;
      if (pen) ctx.lineTo(X(t), Y(v)); else ctx.moveTo(X(t), Y(v));
      pen = true; last = t;
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
  // imputed points: hollow circles on the cleaned line; flagged readings: red crosses
  let imputed = 0;
  for (const r of rows) {
    if (!r.imputed) continue;
    imputed++;  // on the cleaned line, else the corrected one, else the axis
    const v = r.pm2_5_cf_1 != null ? r.pm2_5_cf_1 : r.pm2_5_epa != null ? r.pm2_5_epa : 0;
    ctx.strokeStyle = "#1f4e9c"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(X(secs(r.time)), Y(v), 3.5, 0, 2 * Math.PI); ctx.stroke();
  }
  const byTime = new Map(rows.map((r) => [r.time, r]));
  for (const f of story.flagged) {
    const r = byTime.get(f.time);
    const v = r && r.pm2_5_cf_1 != null ? r.pm2_5_cf_1 : ymax * 0.95;
    const x = X(secs(f.time)), y = Y(v);
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4);
    ctx.moveTo(x + 4, y - 4); ctx.lineTo(x - 4, y + 4); ctx.stroke();
  }
  pm.dataset.points = String(rows.length);
  pm.dataset.flagged = String(story.flagged.length);
  pm.dataset.imputed = String(imputed);
  pm.dataset.alerts = String(story.alerts.length);
  // AQI: the category bands behind the NowCast AQI line
  const abox = { x: 40, y: 20, w: aw - 50, h: ah - 38 };
  let amax = 60;
  for (const r of rows) if (r.aqi != null) amax = Math.max(amax, r.aqi * 1.1);
  const AY = (v) => abox.y + abox.h - (Math.min(v, amax) / amax) * abox.h;
  CATEGORIES.forEach(([start, , c], i) => {
    const end = i + 1 < CATEGORIES.length ? CATEGORIES[i + 1][0] : 500;
    if (start > amax) return;
    actx.globalAlpha = 0.18; actx.fillStyle = c;
    actx.fillRect(abox.x, AY(Math.min(end, amax)), abox.w, AY(start) - AY(Math.min(end, amax)));
    actx.globalAlpha = 1;
  });
  axes(actx, abox, t0, t1, 0, amax, "AQI (NowCast)");
  actx.strokeStyle = "#111"; actx.lineWidth = 2; actx.beginPath();
  let pen = false;
  for (const r of rows) {
    if (r.aqi == null) { pen = false; continue; }
    const x = abox.x + ((secs(r.time) - t0) / (t1 - t0)) * abox.w;
    if (pen) actx.lineTo(x, AY(r.aqi)); else actx.moveTo(x, AY(r.aqi));
    pen = true;
  }
  actx.stroke();
  const legend = SERIES.map(([key, name, c]) => rows.some((r) => r[key] != null)
    ? `<span><i class="swatch line" style="background:${c}"></i>${name}</span>`
    : `<span class="note">${name}: not in this data</span>`);
  legend.push('<span>○ imputed</span><span style="color:#d62728">✕ flagged</span>');
  legend.push('<span><i class="swatch box" style="background:rgba(231,76,60,.3)"></i>incident</span>');
  legend.push('<span><i class="swatch box" style="background:rgba(120,120,120,.35)"></i>gap</span>');
  legend.push('<span><i class="swatch box" style="background:#c0392b"></i>alert</span>');
  el("story-legend").innerHTML = legend.join("");
  fillRows("flagged", story.flagged, (f) =>
    `${fmtTime(f.time)}: ${f.reasons.join(", ")}` +
    (f.flags && Object.keys(f.flags).length ? ` — ${Object.values(f.flags).join("; ")}` : ""));
  fillRows("alerts", story.alerts, (a) =>
    `${fmtTime(a.time)}: ${a.kind.replace("_", " ")} (${a.reasons.join(", ")})`);
}

function fillRows(id, items, text, none = "none in this span") {
  const list = el(id);
  if (!items.length) { list.innerHTML = `<li class="empty">${none}</li>`; return; }
  list.replaceChildren(...items.map((x) => {
    const li = document.createElement("li"); li.textContent = text(x); return li;
  }));
}

function storyEvents() {
  const shift = (sign) => {
    const span = Number(el("span").value) * 1000;
    const end = state.story ? Date.parse(state.story.end) : Date.now();
    state.storyEnd = new Date(end + (sign * span) / 2).toISOString().replace(".000Z", "Z");
    loadStory();
  };
  el("earlier").addEventListener("click", () => shift(-1));
  el("later").addEventListener("click", () => shift(1));
  el("latest").addEventListener("click", () => { state.storyEnd = null; loadStory(); });
  el("span").addEventListener("change", () => loadStory());
  el("close-story").addEventListener("click", () => {
    el("story-view").hidden = true; state.storySensor = null; state.story = null; drawMap();
  });
}

// --- the run's health ------------------------------------------------------------------------

function renderHealth(health) {
  state.health = health;
  const t = health.totals || {};
  const lastMinute = health.minutes.length ? health.minutes[health.minutes.length - 1] : null;
  const stats = [
    ["readings", t.readings ?? "—"],
    ["readings in the latest minute", lastMinute ? lastMinute.readings : "—"],
    ["dead letters", t.dead_letters ?? "—"],
    ["gaps", t.gaps ?? "—"],
    ["offline sensors now", health.offline_sensors.length],
    ["last poll (newest reading)", fmtTime(t.last_poll)],
    ["last write", fmtTime(t.updated)],
  ];
  el("health-stats").innerHTML = stats.map(([name]) =>
    `<div class="stat"><b></b><span>${name}</span></div>`).join("");
  el("health-stats").querySelectorAll(".stat b").forEach((b, i) => {
    b.textContent = String(stats[i][1]);
  });
  el("health-stats").dataset.readings = String(t.readings ?? "");
  fillRows("dead-letters", health.dead_letter_reasons, (d) => `${d.n} × ${d.reason}`, "none");
  el("offline").textContent = health.offline_sensors.length
    ? health.offline_sensors.join(", ") : "none";
  const [ctx, w, h] = fit(el("health-chart"));
  ctx.clearRect(0, 0, w, h);
  const rows = health.minutes;
  if (!rows.length) {
    ctx.fillStyle = "#5b6575"; ctx.font = "13px system-ui";
    ctx.fillText("no health rows yet (the flow writes one per minute it runs)", 10, 20);
    return;
  }
  const box = { x: 40, y: 14, w: w - 50, h: h - 32 };
  // at least the last hour, so a short run is a bar among empty minutes
  const t1 = Date.parse(rows[rows.length - 1].minute) / 1000 + 60;
  const t0 = Math.min(Date.parse(rows[0].minute) / 1000, t1 - 3600);
  const ymax = Math.max(1, ...rows.map((r) => r.readings)) * 1.1;
  axes(ctx, box, t0, t1, 0, ymax, "readings / minute (bars), dead letters (red)");
  const bw = Math.max(2, (box.w * 60) / (t1 - t0) - 1);
  for (const r of rows) {
    const t = Date.parse(r.minute) / 1000;
    const x = box.x + ((t - t0) / (t1 - t0)) * box.w;
    const bh = (r.readings / ymax) * box.h;
    ctx.fillStyle = "#4a78c2"; ctx.fillRect(x, box.y + box.h - bh, bw, bh);
    if (r.dead_letters) {
      const dh = Math.max(2, (r.dead_letters / ymax) * box.h);
      ctx.fillStyle = "#d62728"; ctx.fillRect(x, box.y + box.h - dh, Math.max(2, bw / 3), dh);
    }
  }
}

// --- polling ---------------------------------------------------------------------------------

function takeSensors(data) {
  const index = Object.fromEntries(data.columns.map((c, i) => [c, i]));
  state.newest = data.newest;
  state.sensors = data.sensors.map((r) => {
    const s = {
      sensor_index: r[index.sensor_index], time: r[index.time], pm: r[index.pm2_5_epa],
      kinds: r[index.kinds], offline: r[index.offline], lat: r[index.lat], lon: r[index.lon],
    };
    s.aqi = r[index.aqi] != null ? r[index.aqi] : aqiOf(s.pm);
    if (s.lat != null && s.lon != null) [s.x, s.y] = mercator(s.lat, s.lon);
    return s;
  });
  state.byId = new Map(state.sensors.map((s) => [s.sensor_index, s]));
  const marked = {};
  for (const s of state.sensors) {
    const m = markKind(s);
    if (m) marked[m] = (marked[m] || 0) + 1;
  }
  el("map-summary").textContent = `(${state.sensors.length}; newest reading ${fmtTime(data.newest)}`
    + Object.entries(marked).map(([k, n]) => `; ${n} ${MARKS[k]}`).join("") + ")";
}

async function refresh() {
  const status = el("status");
  try {
    const previous = state.newest;
    const [sensors, incidents, health] = await Promise.all([
      api("/api/sensors"), api("/api/incidents"), api("/api/health"),
    ]);
    takeSensors(sensors);
    drawMap();
    renderIncidents(incidents);
    renderHealth(health);
    if (state.storySensor != null && !state.storyEnd && previous !== state.newest) loadStory();
    state.refreshes++;
    if (!document.body.dataset.ready) document.body.dataset.ready = performance.now().toFixed(0);
    document.body.dataset.refreshes = String(state.refreshes);
    status.className = "status live";
    status.textContent = `live · refreshed ${new Date().toISOString().slice(11, 19)} UTC`
      + ` · every ${state.config.poll} s`;
  } catch (err) {
    status.className = "status stale";
    status.textContent = `not refreshed: ${err.message || err}`;
  }
}

async function start() {
  try { state.config = await api("/api/config"); } catch (err) { /* keep the defaults */ }
  drawLegend();
  mapEvents();
  storyEvents();
  await refresh();
  setInterval(refresh, state.config.poll * 1000);
  const wanted = new URLSearchParams(location.search).get("sensor");
  if (wanted) openSensor(Number(wanted));
}

window.viewer = { state, project, openSensor, openIncident, refresh, colour, category };
start();

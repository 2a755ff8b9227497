// hexpulse wall-screen dashboard: released H3 cells on a MapLibre map, live over SSE.
// Data needs an API key (density:read + traffic:read). It is taken from the URL fragment
// (#key=..., never sent to the server and removed from the address bar) or typed into the page,
// and kept in this browser's localStorage.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY_STORE = "hexpulse.apiKey";
  const DENSITY_STOPS = [0, 50, 200, 500, 1000, 2500, 5000, 10000]; // persons per km²
  const DENSITY_COLORS = ["#1b1d3a", "#30336b", "#4a3f8f", "#7b3f98", "#b54487", "#e5606b", "#fb9a5b", "#fde28a"];
  const LEVEL_COLORS = { free: "#1a9850", light: "#91cf60", moderate: "#fee08b", heavy: "#fc8d59", severe: "#d73027" };
  const UNKNOWN = "#59606b";

  const state = {
    key: null, config: null, map: null, layer: "crowd", res: 9,
    windows: [], selected: null, live: true, stream: null, lastLive: null, smooth: false,
  };
  window.hexpulse = { drawn: 0, window: null, layer: "crowd", renders: 0, smoothed: 0 };

  function takeKey() {
    const m = location.hash.match(/key=([^&]+)/);
    if (m) {
      localStorage.setItem(KEY_STORE, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return localStorage.getItem(KEY_STORE);
  }

  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (cls || "");
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { Authorization: "Bearer " + state.key } });
    if (resp.status === 401) {
      localStorage.removeItem(KEY_STORE);
      askKey("That key was refused (unknown or revoked).");
      throw new Error("unauthorized");
    }
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail; } catch (e) { /* keep statusText */ }
      throw new Error(detail);
    }
    return resp.json();
  }

  function askKey(message) {
    const form = $("key-form");
    form.hidden = false;
    if (message) form.querySelector("p").textContent = message;
  }

  function bboxParam() {
    return state.config.service_area_bbox.join(",");
  }

  function fmtTime(iso) {
    return iso ? iso.replace("T", " ").replace("Z", " UTC") : "";
  }

  function ring(cell) {
    return [h3.cellToBoundary(cell, true)]; // GeoJSON order [lng, lat], closed
  }

  // With smoothing on, the colour is the smoothed count (labelled in the legend and tooltip);
  // the raw estimate stays in the tooltip.
  function densityFeatures(doc) {
    const c = Object.fromEntries(doc.columns.map((name, i) => [name, i]));
    const smooth = state.smooth && c.count_smoothed !== undefined;
    return doc.rows.map((r) => {
      const props = {
        cell: r[c.cell], count: r[c.count], lo: r[c.ci95_low], hi: r[c.ci95_high],
        value: r[c.density_per_km2], faint: r[c.ci95_low] <= 0 ? 1 : 0,
        moving: r[c.moving], speed: r[c.mean_speed_kmh], smoothed: 0,
      };
      if (smooth && r[c.count_smoothed] !== null) {
        Object.assign(props, {
          smoothed: 1, s: r[c.count_smoothed], slo: r[c.count_smoothed_ci95_low], shi: r[c.count_smoothed_ci95_high],
          value: r[c.count_smoothed] / h3.cellArea(r[c.cell], "km2"), faint: r[c.count_smoothed_ci95_low] <= 0 ? 1 : 0,
        });
      }
      return { type: "Feature", geometry: { type: "Polygon", coordinates: ring(r[c.cell]) }, properties: props };
    });
  }

  function trafficFeatures(doc) {
    return doc.cells.map((t) => ({
      type: "Feature",
      geometry: { type: "Polygon", coordinates: ring(t.cell) },
      properties: {
        cell: t.cell, level: t.level || "unknown", index: t.congestion_index, speed: t.mean_speed_kmh,
        free: t.free_flow_kmh, moving: t.moving, faint: t.moving_ci95[0] <= 0 ? 1 : 0,
        // Intervals for the hover (scalars: map features flatten arrays to strings).
        source: t.source, range: t.level_range ? t.level_range.join("–") : "",
        ilo: t.congestion_index_ci95 ? t.congestion_index_ci95[0] : null,
        ihi: t.congestion_index_ci95 ? t.congestion_index_ci95[1] : null,
        slo: t.speed_ci95_kmh ? t.speed_ci95_kmh[0] : null, shi: t.speed_ci95_kmh ? t.speed_ci95_kmh[1] : null,
      },
    }));
  }

  function fillColor() {
    if (state.layer === "traffic") {
      const m = ["match", ["get", "level"]];
      for (const [k, v] of Object.entries(LEVEL_COLORS)) m.push(k, v);
      m.push(UNKNOWN);
      return m;
    }
    const e = ["interpolate", ["linear"], ["get", "value"]];
    DENSITY_STOPS.forEach((s, i) => e.push(s, DENSITY_COLORS[i]));
    return e;
  }

  function renderLegend(privacy) {
    const box = $("legend-scale");
    box.innerHTML = "";
    const rows = state.layer === "traffic"
      ? [...Object.entries(LEVEL_COLORS).map(([k, v]) => [v, k]), [UNKNOWN, "no speed / no free-flow yet"]]
      : DENSITY_STOPS.map((s, i) => [DENSITY_COLORS[i], "≥ " + s.toLocaleString()]);
    for (const [color, label] of rows) {
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = color;
      const tx = document.createElement("span");
      tx.textContent = label;
      box.append(sw, tx);
    }
    $("legend-title").textContent = state.layer === "traffic"
      ? "Congestion (free-flow ÷ current speed)"
      : state.smooth ? "Persons per km² (smoothed over recent windows)" : "Persons per km² (noisy)";
    if (privacy) $("privacy-note").textContent = privacy.note + " " + privacy.guarantee;
    renderCorridorLegend();
  }

  function draw(features, windowInfo, privacy) {
    const src = state.map.getSource("cells");
    src.setData({ type: "FeatureCollection", features });
    state.map.setPaintProperty("cells-fill", "fill-color", fillColor());
    $("window").textContent = fmtTime(windowInfo.window_start) + " – " + fmtTime(windowInfo.window_end).slice(11);
    renderLegend(privacy);
    state.map.once("idle", () => {
      window.hexpulse.drawn = state.map.queryRenderedFeatures({ layers: ["cells-fill"] }).length;
      window.hexpulse.window = windowInfo.window_start;
      window.hexpulse.layer = state.layer;
      window.hexpulse.smoothed = features.filter((f) => f.properties.smoothed === 1).length;
      window.hexpulse.renders += 1;
      document.body.dataset.window = windowInfo.window_start;
    });
    state.map.triggerRepaint();
  }

  async function load() {
    const at = state.live ? "latest" : state.selected;
    if (!at) return;
    const q = `bbox=${bboxParam()}&res=${state.res}&at=${encodeURIComponent(at)}`;
    const smooth = state.smooth ? "&smooth=true" : "";
    try {
      if (state.layer === "traffic") {
        const doc = await api(`/v1/traffic?${q}`);
        drawCorridors(doc.corridors || [], doc.window);
        draw(trafficFeatures(doc), doc.window, doc.privacy);
      } else {
        const doc = await api(`/v1/density?${q}&format=rows${smooth}`);
        drawCorridors([], doc.window);
        draw(densityFeatures(doc), doc.window, doc.privacy);
      }
    } catch (err) {
      if (err.message !== "unauthorized") setStatus(err.message, "err");
    }
  }

  async function loadWindows() {
    const doc = await api("/v1/windows?limit=60");
    state.windows = doc.recent.map((w) => w.window_start).reverse(); // oldest → newest
    updateSlider();
  }

  function updateSlider() {
    const slider = $("slider");
    slider.max = Math.max(0, state.windows.length - 1);
    if (state.live) slider.value = slider.max;
    const label = state.live ? "live · " + fmtTime(state.windows[state.windows.length - 1]) : fmtTime(state.selected);
    $("slider-label").textContent = label;
  }

  function onWindowEvent(doc) {
    const start = doc.window.window_start;
    if (!state.windows.includes(start)) {
      state.windows.push(start);
      if (state.windows.length > 60) state.windows.shift();
    }
    state.lastLive = start;
    updateSlider();
    setStatus("live · release lag " + doc.window.release_lag_s.toFixed(1) + " s", "live");
    if (!state.live) return;
    if (state.layer === "crowd") {
      drawCorridors([], doc.window);
      draw(densityFeatures(doc), doc.window, doc.privacy);
    } else load();
  }

  // EventSource cannot send an Authorization header, so the stream is read with fetch().
  async function openStream() {
    if (state.stream) state.stream.abort();
    const ctrl = new AbortController();
    state.stream = ctrl;
    const url = `/v1/density/stream?bbox=${bboxParam()}&res=${state.res}&format=rows${state.smooth ? "&smooth=true" : ""}`;
    let delay = 1000;
    while (!ctrl.signal.aborted) {
      try {
        const resp = await fetch(url, { headers: { Authorization: "Bearer " + state.key }, signal: ctrl.signal });
        if (!resp.ok) throw new Error("stream answered " + resp.status);
        delay = 1000;
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let event = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (event === "window" && data.length) onWindowEvent(JSON.parse(data.join("\n")));
          }
        }
      } catch (err) {
        if (ctrl.signal.aborted) return;
        setStatus("live stream lost, retrying", "err");
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }

  function initMap() {
    const tiles = state.config.basemap_tiles_url;
    const style = {
      version: 8,
      sources: tiles ? { base: { type: "raster", tiles: [tiles], tileSize: 256, attribution: "basemap" } } : {},
      layers: [{ id: "bg", type: "background", paint: { "background-color": "#0d1117" } }]
        .concat(tiles ? [{ id: "base", type: "raster", source: "base", paint: { "raster-opacity": 0.55 } }] : []),
    };
    const [w, s, e, n] = state.config.service_area_bbox;
    const map = new maplibregl.Map({ container: "map", style, bounds: [[w, s], [e, n]], attributionControl: false });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
    state.map = map;
    return new Promise((resolve) => map.on("load", () => {
      map.addSource("cells", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
      map.addLayer({
        id: "cells-fill", type: "fill", source: "cells",
        paint: {
          "fill-color": fillColor(), "fill-outline-color": "#0d1117",
          "fill-opacity": cellOpacity(false),
        },
      });
      map.addLayer({ id: "area", type: "line", source: { type: "geojson", data: {
        type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
      } }, paint: { "line-color": "#8b949e", "line-width": 1, "line-dasharray": [2, 2] } });
      addCorridorLayers(map);
      map.on("mousemove", "cells-fill", (ev) => showTip(ev));
      map.on("mouseleave", "cells-fill", () => { $("tooltip").hidden = true; });
      resolve();
    }));
  }

  function trafficTip(p) {
    const known = (x) => x !== null && x !== undefined && x !== "null";
    const iv = (lo, hi, d) => (known(lo) && known(hi) ? ` (95%: ${(+lo).toFixed(d)}–${(+hi).toFixed(d)})` : "");
    const ends = p.range ? p.range.split("–") : [];
    const could = ends.length === 2 && ends[0] !== ends[1] ? ` (95%: ${p.range})` : "";
    return `${p.cell}\nlevel ${p.level}${could}`
      + `  index ${p.index ?? "–"}${iv(p.ilo, p.ihi, 2)}\nspeed ${p.speed ?? "–"} km/h${iv(p.slo, p.shi, 0)}`
      + `  free-flow ${p.free ?? "–"} km/h\nmoving ${p.moving}  (from ${p.source === "bins" ? "speed bins" : "cell speeds"})`;
  }

  function showTip(ev) {
    if (state.overCorridor) return; // a corridor's tooltip wins over the cell beneath it
    const p = ev.features[0].properties;
    const tip = $("tooltip");
    tip.textContent = state.layer === "traffic"
      ? trafficTip(p)
      : `${p.cell}\n` + (p.smoothed ? `smoothed ${Math.round(p.s)} persons (95%: ${Math.round(p.slo)}–${Math.round(p.shi)})\nraw ` : "")
        + `${p.count} persons (95%: ${Math.round(p.lo)}–${Math.round(p.hi)})\n${Math.round(p.value)} /km²  moving ${p.moving}`
        + (p.speed !== null && p.speed !== "null" ? `  ${p.speed} km/h` : "");
    tip.style.left = ev.point.x + 14 + "px";
    tip.style.top = ev.point.y + 14 + "px";
    tip.hidden = false;
  }

  // ---- Corridors (issue #12): road segments measured directly, coloured by congestion level. ----
  // /v1/traffic returns each corridor with its outline; on the traffic layer they are drawn over
  // the (then dimmed) res-8 cells with a dark casing, so a wall screen reads roads at a glance.
  // Faded corridor: its level's 95% interval spans two or more levels. Hover: every interval.
  const LEVELS = ["free", "light", "moderate", "heavy", "severe"];

  function cellOpacity(dim) {
    return dim ? ["case", ["==", ["get", "faint"], 1], 0.12, 0.3]
      : ["case", ["==", ["get", "faint"], 1], 0.35, 0.85];
  }

  function corridorFeatures(corridors) {
    const iv = (a) => (a ? a.map((x) => Math.round(x * 100) / 100).join("–") : "");
    return corridors.filter((c) => c.geometry).map((c) => {
      const r = c.level_range || [];
      const spread = r.length === 2 ? Math.abs(LEVELS.indexOf(r[1]) - LEVELS.indexOf(r[0])) : 0;
      return {
        type: "Feature", geometry: c.geometry,
        properties: {
          id: c.zone_id, name: c.name, set: c.zone_set, level: c.level || "unknown",
          faint: c.level && spread < 2 ? 0 : 1, range: r.length === 2 ? r.join("–") : "",
          index: c.congestion_index, ici: iv(c.congestion_index_ci95), speed: c.mean_speed_kmh,
          sci: iv(c.speed_ci95_kmh), free: c.free_flow_kmh, fci: iv(c.free_flow_ci95_kmh),
          moving: c.moving, mci: iv(c.moving_ci95), cells: c.cells,
        },
      };
    });
  }

  function drawCorridors(corridors, windowInfo) {
    if (!state.map || !state.map.getSource("corridors")) return;
    const features = corridorFeatures(corridors);
    state.map.getSource("corridors").setData({ type: "FeatureCollection", features });
    state.map.setPaintProperty("cells-fill", "fill-opacity", cellOpacity(features.length > 0));
    state.map.once("idle", () => {
      const drawn = state.map.queryRenderedFeatures({ layers: ["corridors-fill"] });
      window.hexpulse.corridors = new Set(drawn.map((f) => f.properties.id)).size;
      window.hexpulse.corridorLevels = Object.fromEntries(features.map((f) => [f.properties.id, f.properties.level]));
      window.hexpulse.corridorWindow = windowInfo ? windowInfo.window_start : null;
      window.hexpulse.corridorRenders = (window.hexpulse.corridorRenders || 0) + 1;
    });
  }

  function levelColor() {
    const m = ["match", ["get", "level"]];
    for (const [k, v] of Object.entries(LEVEL_COLORS)) m.push(k, v);
    m.push(UNKNOWN);
    return m;
  }

  function addCorridorLayers(map) {
    map.addSource("corridors", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: "corridors-casing", type: "line", source: "corridors",
      paint: { "line-color": "#0d1117", "line-width": 6, "line-opacity": 0.9 } });
    map.addLayer({ id: "corridors-fill", type: "fill", source: "corridors",
      paint: { "fill-color": levelColor(), "fill-opacity": ["case", ["==", ["get", "faint"], 1], 0.45, 0.95] } });
    map.addLayer({ id: "corridors-edge", type: "line", source: "corridors",
      paint: { "line-color": levelColor(), "line-width": 3 } });
    map.on("mousemove", "corridors-fill", (ev) => {
      state.overCorridor = true;
      showCorridorTip(ev);
    });
    map.on("mouseleave", "corridors-fill", () => {
      state.overCorridor = false;
      $("tooltip").hidden = true;
    });
    // Test hook: the screen position (map pixels) of a point, so a browser test can hover a corridor.
    window.hexpulse.project = (lng, lat) => map.project([lng, lat]);
  }

  function corridorTip(p) {
    const ends = p.range ? p.range.split("–") : [];
    const could = ends.length === 2 && ends[0] !== ends[1] ? ` (95%: ${p.range})` : "";
    const known = (x) => x !== null && x !== undefined && x !== "null";
    const v = (x, unit) => (known(x) ? `${x}${unit}` : "–");
    const ci = (s) => (s ? ` (95%: ${s})` : "");
    return `${p.name}  [${p.set} · ${p.cells} cells]\nlevel ${p.level}${could}  index ${v(p.index, "")}${ci(p.ici)}`
      + `\nspeed ${v(p.speed, " km/h")}${ci(p.sci)}\nfree-flow ${v(p.free, " km/h")}${ci(p.fci)}`
      + `\nmoving ${p.moving}${ci(p.mci)}  (one draw for the whole corridor)`;
  }

  function showCorridorTip(ev) {
    const tip = $("tooltip");
    tip.textContent = corridorTip(ev.features[0].properties);
    tip.style.left = ev.point.x + 14 + "px";
    tip.style.top = ev.point.y + 14 + "px";
    tip.hidden = false;
  }

  function renderCorridorLegend() {
    const note = $("legend-corridors");
    if (!note) return;
    note.hidden = state.layer !== "traffic";
    note.textContent = "Roads: corridors measured directly, coloured by level (faded: the 95% interval spans"
      + " two levels or more); hexagons behind them: res-8 cells, dimmed. Hover for intervals.";
  }
  // ---- end of corridors --------------------------------------------------------------------------

  // ---- Alert feed (issue #13): zones with their current level and the latest events. -------------
  // Shown only to a key with the alerts:write scope (its own subscriptions); refreshed every 10 s from
  // GET /v1/alerts/subscriptions and /v1/alerts/events (the SSE stream serves integrations).
  const ALERT_POLL_MS = 10000;
  window.hexpulseAlerts = (alerts) => {
    const list = $("alert-list");
    list.innerHTML = "";
    for (const a of alerts) {
      const li = document.createElement("li");
      li.textContent = a.text || JSON.stringify(a);
      if (a.cls) li.className = a.cls;
      list.append(li);
    }
    $("alerts").hidden = alerts.length === 0;
  };

  function alertLines(subs, events) {
    const current = {};
    for (const e of events) if (!(e.subscription_id in current)) current[e.subscription_id] = e; // newest first
    const lines = subs.map((s) => {
      const e = current[s.id];
      const level = e ? e.level_after : "normal";
      return { text: `${s.name}: ${level}`, cls: "alert-level level-" + (e && e.kind !== "cleared" ? "on" : "off") };
    });
    for (const e of events.slice(0, 10)) {
      const sub = subs.find((s) => s.id === e.subscription_id);
      const p = Math.round(e.probability * 100);
      lines.push({
        text: `${fmtTime(e.window_start)} ${sub ? sub.name : e.zone_id} ${e.kind} → ${e.level_after}` +
          ` (${e.value.toFixed(2)} ± ${(1.96 * e.sigma).toFixed(2)}, P>${e.threshold} = ${p}%)`,
        cls: "alert-event",
      });
    }
    return lines;
  }

  async function pollAlerts() {
    try {
      const subs = (await api("/v1/alerts/subscriptions")).subscriptions;
      const events = subs.length ? (await api("/v1/alerts/events?limit=200")).events : [];
      window.hexpulseAlerts(alertLines(subs, events));
    } catch (err) {
      return; // no alerts:write scope (403) or a transient error: keep the panel as it is
    }
    setTimeout(pollAlerts, ALERT_POLL_MS);
  }
  // ---- end of the alert feed ---------------------------------------------------------------------

  function wireControls() {
    for (const btn of document.querySelectorAll(".switch button")) {
      btn.addEventListener("click", () => {
        state.layer = btn.dataset.layer;
        document.querySelectorAll(".switch button").forEach((b) => b.classList.toggle("on", b === btn));
        if (state.layer === "traffic" && state.res === 9 && state.config.resolutions.includes(8)) setRes(8);
        else load();
      });
    }
    $("res").addEventListener("change", (ev) => setRes(Number(ev.target.value)));
    $("smooth").addEventListener("click", () => {
      state.smooth = !state.smooth;
      $("smooth").classList.toggle("on", state.smooth);
      $("smooth").setAttribute("aria-pressed", String(state.smooth));
      openStream();
      load();
    });
    $("slider").addEventListener("input", (ev) => {
      const i = Number(ev.target.value);
      state.live = i === state.windows.length - 1;
      state.selected = state.windows[i];
      $("live").classList.toggle("on", state.live);
      updateSlider();
      load();
    });
    $("live").addEventListener("click", () => {
      state.live = true;
      $("live").classList.add("on");
      updateSlider();
      load();
    });
    $("key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      localStorage.setItem(KEY_STORE, $("key-input").value.trim());
      location.reload();
    });
  }

  function setRes(res) {
    state.res = res;
    $("res").value = String(res);
    load();
    openStream();
  }

  async function main() {
    state.config = await (await fetch("/dashboard-config.json")).json();
    const sel = $("res");
    for (const r of state.config.resolutions) sel.add(new Option(String(r), String(r)));
    sel.value = String(state.res);
    renderLegend(null);
    wireControls();
    await initMap();
    state.key = takeKey();
    if (!state.key) { askKey(); setStatus("no API key", "err"); return; }
    try {
      await loadWindows();
    } catch (err) {
      if (err.message !== "unauthorized") setStatus(err.message, "err");
      return;
    }
    await load();
    openStream();
    pollAlerts();
  }

  main();
})();

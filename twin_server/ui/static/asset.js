/* Asset page: live values from the event stream, the trend of one signal with zoom, and its SPC chart. */
"use strict";
(function (TE) {
  var D = TE.data();
  var rows = {};
  document.querySelectorAll("tr[data-signal]").forEach(function (tr) {
    rows[tr.getAttribute("data-signal")] = { v: tr.querySelector(".v"), q: tr.querySelector(".q"), ts: tr.querySelector(".ts"), tr: tr };
  });
  var cmCells = {};
  document.querySelectorAll("[data-cm-key]").forEach(function (e) { cmCells[e.getAttribute("data-cm-key")] = e; });
  var pending = {}, scheduled = false;
  var select = document.getElementById("signal");
  var series = [], zoomed = false, lastDraw = 0;

  function flush() {
    scheduled = false;
    Object.keys(pending).forEach(function (key) {
      var parts = key.split("\u0000"), sm = parts[0], path = parts[1], v = pending[key];
      if (sm === D.od) {
        var dot = path.lastIndexOf("."), name = path.slice(0, dot), field = path.slice(dot + 1), row = rows[name];
        if (!row) return;
        if (field === "Value") { row.v.textContent = TE.fmt(v); }
        else if (field === "Quality") { row.q.textContent = TE.fmt(v); row.q.className = "q q-" + v; }
        else if (field === "Timestamp" && typeof v === "string") { row.ts.textContent = new Date(v).toISOString().slice(11, 19); }
      } else if (sm === D.cm && cmCells[path]) {
        cmCells[path].textContent = TE.fmt(v);
        if (path === "HealthIndex" && typeof v === "number") {
          var bar = document.getElementById("health-bar");
          if (bar) bar.setAttribute("width", (Math.max(0, Math.min(1, v)) * 100).toFixed(1));
        }
      }
    });
    pending = {};
    document.body.setAttribute("data-updates", String(TE.received || 0));
    var now = Date.now();
    if (!zoomed && now - lastDraw > 1000 && series.length) { lastDraw = now; drawTrend(); }
  }

  function onChange(sm, path, value) {
    pending[sm + "\u0000" + path] = value;
    if (sm === D.od && select && path === select.value + ".Value" && typeof value === "number") {
      series.push({ t: Date.now(), v: value });
      if (series.length > 2000) series.shift();
    }
    if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
  }

  var conn = document.getElementById("conn");
  var ids = [D.odB64, D.cmB64].filter(Boolean);
  if (ids.length) TE.events(ids, onChange, function (up) {
    if (conn) conn.textContent = up ? "● " + D.texts["asset.connected"] : "○ " + D.texts["asset.disconnected"];
    if (conn) conn.setAttribute("data-connected", up ? "1" : "0");
  });
  TE.onReplaced = function (id) { if (id === D.cm) location.reload(); };

  function query(path, extra) {
    return "/ui/data/timeseries?submodelId=" + encodeURIComponent(D.odB64) + "&idShortPath=" + encodeURIComponent(path) + (extra || "");
  }
  function toPoints(body) {
    return body.points.filter(function (p) { return typeof p.value === "number"; })
      .map(function (p) { return { t: Date.parse(p.time), v: p.value, min: p.min, max: p.max }; });
  }
  function drawTrend() {
    var host = document.getElementById("trend");
    if (!series.length) { host.textContent = D.texts["empty.history"]; return; }
    TE.lineChart(host, series, zoom);
  }
  function load(from, to) {
    if (!D.odB64 || !select || !select.value) return;
    var extra = "";
    if (from && to) {
      var seconds = (to - from) / 1000;
      extra = "&from=" + new Date(from).toISOString() + "&to=" + new Date(to).toISOString();
      if (seconds > 600) extra += "&interval=" + Math.max(1, seconds / 400);
    } else {
      extra = "&limit=600";
    }
    fetch(query(select.value + ".Value", extra), { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (body) { series = toPoints(body); drawTrend(); });
    fetch(query(select.value + ".Value", "&limit=250"), { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (body) {
        var values = toPoints(body).map(function (p) { return p.v; });
        var res = TE.spc(values, 5), host = document.getElementById("spc");
        if (!res) { host.textContent = D.texts["asset.spc.few"]; return; }
        TE.spcChart(host, res);
      });
  }
  function zoom(a, b) { zoomed = true; load(a, b); }
  if (select) {
    select.addEventListener("change", function () { zoomed = false; load(); });
    document.getElementById("reset").addEventListener("click", function () { zoomed = false; load(); });
    load();
  }
})(window.TE);

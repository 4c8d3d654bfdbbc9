/* Inline-SVG charts: a time-series line chart with drag-to-zoom, and X-bar/R control charts with
   subgroup-correct limits (R-bar is the mean of the subgroups' own ranges, never the global range). */
"use strict";
window.TE = window.TE || {};
(function (TE) {
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el("text", { x: x, y: y, "text-anchor": anchor || "start" }, parent);
    t.textContent = s;
    return t;
  }
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v < lo) lo = v; if (v > hi) hi = v; });
    if (lo === hi) { lo -= 1; hi += 1; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  function timeLabel(ms, span) {
    var d = new Date(ms);
    var hh = String(d.getHours()).padStart(2, "0"), mm = String(d.getMinutes()).padStart(2, "0");
    var ss = String(d.getSeconds()).padStart(2, "0");
    return span < 600000 ? hh + ":" + mm + ":" + ss : (span < 86400000 ? hh + ":" + mm : (d.getMonth() + 1) + "/" + d.getDate() + " " + hh + ":" + mm);
  }

  /* points: [{t: ms, v: number, min?, max?}]; onZoom(fromMs, toMs) after a drag selection. */
  TE.lineChart = function (host, points, onZoom) {
    host.textContent = "";
    var W = 900, H = 260, L = 56, R = 12, T = 10, B = 26;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img" }, host);
    if (!points.length) return svg;
    var t0 = points[0].t, t1 = points[points.length - 1].t;
    if (t0 === t1) { t0 -= 1000; t1 += 1000; }
    var ys = [];
    points.forEach(function (p) { ys.push(p.v); if (p.min !== undefined && p.min !== null) { ys.push(p.min, p.max); } });
    var ext = extent(ys);
    function X(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
    function Y(v) { return T + (ext[1] - v) / (ext[1] - ext[0]) * (H - T - B); }
    var g = el("g", { "class": "axis" }, svg);
    for (var i = 0; i <= 4; i++) {
      var v = ext[0] + (ext[1] - ext[0]) * i / 4;
      el("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v) }, g);
      text(svg, L - 4, Y(v) + 4, TE.fmt(v), "end");
      var tt = t0 + (t1 - t0) * i / 4;
      text(svg, X(tt), H - 8, timeLabel(tt, t1 - t0), i === 0 ? "start" : (i === 4 ? "end" : "middle"));
    }
    var band = points.filter(function (p) { return p.min !== undefined && p.min !== null; });
    if (band.length) {
      var up = band.map(function (p) { return X(p.t).toFixed(1) + "," + Y(p.max).toFixed(1); });
      var down = band.slice().reverse().map(function (p) { return X(p.t).toFixed(1) + "," + Y(p.min).toFixed(1); });
      el("polygon", { "class": "band", points: up.concat(down).join(" ") }, svg);
    }
    el("polyline", { "class": "series", points: points.map(function (p) { return X(p.t).toFixed(1) + "," + Y(p.v).toFixed(1); }).join(" ") }, svg);
    if (onZoom) {
      var sel = null, x0 = 0;
      function svgX(evt) {
        var r = svg.getBoundingClientRect();
        return (evt.clientX - r.left) / r.width * W;
      }
      svg.addEventListener("mousedown", function (evt) {
        x0 = svgX(evt);
        sel = el("rect", { "class": "sel", x: x0, y: T, width: 0, height: H - T - B }, svg);
      });
      svg.addEventListener("mousemove", function (evt) {
        if (!sel) return;
        var x = svgX(evt);
        sel.setAttribute("x", Math.min(x, x0)); sel.setAttribute("width", Math.abs(x - x0));
      });
      svg.addEventListener("mouseup", function (evt) {
        if (!sel) return;
        var x = svgX(evt), a = Math.min(x, x0), b = Math.max(x, x0);
        sel.remove(); sel = null;
        if (b - a < 5) return;
        function T_(px) { return t0 + (px - L) / (W - L - R) * (t1 - t0); }
        onZoom(Math.max(t0, T_(a)), Math.min(t1, T_(b)));
      });
    }
    return svg;
  };

  /* Control-chart constants for subgroup sizes 2..10 (ASTM E2587 / Montgomery, Table VI). */
  var A2 = {2: 1.880, 3: 1.023, 4: 0.729, 5: 0.577, 6: 0.483, 7: 0.419, 8: 0.373, 9: 0.337, 10: 0.308};
  var D3 = {2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0.076, 8: 0.136, 9: 0.184, 10: 0.223};
  var D4 = {2: 3.267, 3: 2.574, 4: 2.282, 5: 2.114, 6: 2.004, 7: 1.924, 8: 1.864, 9: 1.816, 10: 1.777};

  /* X-bar/R chart of consecutive subgroups of n values, with Western Electric rules on X-bar:
     1: beyond a 3-sigma limit; 2: 2 of 3 beyond 2 sigma (same side); 3: 4 of 5 beyond 1 sigma (same
     side); 4: 8 in a row on one side of the centre line. Rule 1 also on R. */
  TE.spc = function (values, n) {
    n = n || 5;
    var groups = [];
    for (var i = 0; i + n <= values.length; i += n) groups.push(values.slice(i, i + n));
    if (groups.length < 2) return null;
    var means = groups.map(function (g) { return g.reduce(function (a, b) { return a + b; }, 0) / n; });
    var ranges = groups.map(function (g) { return Math.max.apply(null, g) - Math.min.apply(null, g); });
    var xbar = means.reduce(function (a, b) { return a + b; }, 0) / means.length;
    var rbar = ranges.reduce(function (a, b) { return a + b; }, 0) / ranges.length;
    var sigma = A2[n] * rbar / 3;  /* sigma of a subgroup mean */
    var res = { n: n, xbar: xbar, rbar: rbar, means: means, ranges: ranges,
      ucl: xbar + A2[n] * rbar, lcl: xbar - A2[n] * rbar, rucl: D4[n] * rbar, rlcl: D3[n] * rbar,
      violations: means.map(function () { return []; }), rViolations: ranges.map(function () { return []; }) };
    function zone(i) { return sigma > 0 ? (means[i] - xbar) / sigma : 0; }
    for (var k = 0; k < means.length; k++) {
      var z = zone(k);
      if (Math.abs(z) > 3) res.violations[k].push("WE1");
      [[2, 3, 2, "WE2"], [4, 5, 1, "WE3"]].forEach(function (r) {
        var need = r[0], win = r[1], lim = r[2], name = r[3];
        if (k + 1 < win) return;
        [1, -1].forEach(function (side) {
          var c = 0;
          for (var j = k - win + 1; j <= k; j++) if (side * zone(j) > lim) c++;
          if (c >= need && side * z > lim) res.violations[k].push(name);
        });
      });
      if (k >= 7) {
        var above = 0, below = 0;
        for (var j2 = k - 7; j2 <= k; j2++) { if (means[j2] > xbar) above++; else if (means[j2] < xbar) below++; }
        if (above === 8 || below === 8) res.violations[k].push("WE4");
      }
      if (ranges[k] > res.rucl || ranges[k] < res.rlcl) res.rViolations[k].push("WE1");
    }
    return res;
  };

  function controlChart(host, title, values, cl, ucl, lcl, viol) {
    var W = 900, H = 180, L = 56, R = 60, T = 16, B = 18;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img" }, host);
    var ext = extent(values.concat([ucl, lcl, cl]));
    function X(i) { return L + (values.length < 2 ? 0 : i / (values.length - 1)) * (W - L - R); }
    function Y(v) { return T + (ext[1] - v) / (ext[1] - ext[0]) * (H - T - B); }
    text(svg, L, 11, title);
    [[cl, "cl", "CL"], [ucl, "lim", "UCL"], [lcl, "lim", "LCL"]].forEach(function (c) {
      el("line", { "class": c[1], x1: L, x2: W - R, y1: Y(c[0]), y2: Y(c[0]) }, svg);
      text(svg, W - R + 4, Y(c[0]) + 4, c[2] + " " + TE.fmt(c[0]));
    });
    el("polyline", { "class": "series", points: values.map(function (v, i) { return X(i).toFixed(1) + "," + Y(v).toFixed(1); }).join(" ") }, svg);
    values.forEach(function (v, i) {
      var bad = viol[i].length > 0;
      var c = el("circle", { "class": bad ? "pt bad" : "pt", cx: X(i).toFixed(1), cy: Y(v).toFixed(1), r: bad ? 4 : 2.5 }, svg);
      if (bad) { c.setAttribute("data-rules", viol[i].join(",")); el("title", {}, c).textContent = viol[i].join(", "); }
    });
  }

  TE.spcChart = function (host, res) {
    host.textContent = "";
    controlChart(host, "X̄ (n=" + res.n + ")", res.means, res.xbar, res.ucl, res.lcl, res.violations);
    controlChart(host, "R", res.ranges, res.rbar, res.rucl, res.rlcl, res.rViolations);
    var rules = {};
    res.violations.concat(res.rViolations).forEach(function (v) { v.forEach(function (r) { rules[r] = true; }); });
    var p = document.createElement("p");
    p.className = "rules";
    p.id = "spc-rules";
    p.textContent = Object.keys(rules).sort().join(", ");
    host.appendChild(p);
  };
})(window.TE);

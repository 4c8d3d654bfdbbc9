/* Shared helpers of the TwinEdge dashboards (no libraries; everything from this server). */
"use strict";
window.TE = window.TE || {};
(function (TE) {
  TE.data = function () {
    var el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : {};
  };
  TE.fmt = function (v) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
    return String(v);
  };
  TE.b64url = function (text) {
    var bytes = new TextEncoder().encode(text), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  /* Flatten one value-changed event into [path, value] pairs of leaf values:
     bulk $value writes carry {Signal: {Value: ...}} with idShortPath null. */
  TE.leaves = function (path, value) {
    var out = [];
    (function walk(prefix, v) {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        Object.keys(v).forEach(function (k) {
          var last = prefix ? prefix.split(".").pop() : null;
          walk(last === k ? prefix : (prefix ? prefix + "." + k : k), v[k]);
        });
      } else if (prefix) {
        out.push([prefix, v]);
      }
    })(path || "", value);
    return out;
  };
  /* Server-sent events of the given submodel ids (base64url). onChange(submodelId, path, value). */
  TE.events = function (ids, onChange, onState) {
    if (!window.EventSource) return null;
    var q = ids.map(function (i) { return "&id=" + encodeURIComponent(i); }).join("");
    var src = new EventSource("/ui/data/events?kind=submodels&type=value-changed,updated" + q);
    src.addEventListener("value-changed", function (e) {
      var ev = JSON.parse(e.data);
      TE.received = (TE.received || 0) + 1;
      TE.leaves(ev.idShortPath, ev.value).forEach(function (pv) { onChange(ev.id, pv[0], pv[1]); });
    });
    src.addEventListener("updated", function (e) {
      var ev = JSON.parse(e.data);
      if (ev.idShortPath === null && TE.onReplaced) TE.onReplaced(ev.id);
    });
    src.onopen = function () { if (onState) onState(true); };
    src.onerror = function () { if (onState) onState(false); };
    return src;
  };
})(window.TE);

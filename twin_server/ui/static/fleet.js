/* Fleet page: health and last-data time follow the event stream. */
"use strict";
(function (TE) {
  var byOd = {}, byCm = {};
  document.querySelectorAll("tr[data-od]").forEach(function (tr) {
    var od = tr.getAttribute("data-od"), cm = tr.getAttribute("data-cm");
    if (od) byOd[od] = tr;
    if (cm) byCm[cm] = tr;
  });
  var ids = Object.keys(byOd).concat(Object.keys(byCm));
  if (!ids.length) return;
  /* a large fleet takes the whole stream of submodel changes and picks its rows here, instead of a
     URL with one id filter per submodel */
  TE.events(ids.length > 60 ? [] : ids.map(TE.b64url), function (sm, path, value) {
    var tr = byOd[sm];
    if (tr && /\.Timestamp$/.test(path) && typeof value === "string") {
      var t = tr.querySelector("time.last");
      t.textContent = value.replace("T", " ").slice(0, 19);
      t.setAttribute("datetime", value);
    }
    tr = byCm[sm];
    if (tr && path === "HealthIndex") tr.querySelector(".health").textContent = TE.fmt(value);
  });
})(window.TE);

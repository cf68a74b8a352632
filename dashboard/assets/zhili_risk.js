/* The risk register's form: a click on the register's map (/dashboard/risk) puts the
   clicked point's lon/lat into the registration form (the map's own projection, inverted).
   A click on a shape does it too; a drag (pan) does not. */
(function () {
  var down = null;
  document.addEventListener("pointerdown", function (ev) { down = [ev.clientX, ev.clientY]; }, true);
  document.addEventListener("click", function (ev) {
    var box = document.getElementById("risk-map");
    var lonBox = document.getElementById('{"field":"lon","type":"risk-f"}');
    if (!box || !lonBox || !box.contains(ev.target)) { return; }
    if (down && Math.abs(down[0] - ev.clientX) + Math.abs(down[1] - ev.clientY) > 4) { return; }
    var gd = box.querySelector(".js-plotly-plot");
    var geo = gd && gd._fullLayout && gd._fullLayout.geo && gd._fullLayout.geo._subplot;
    if (!geo || !geo.projection || !geo.bgRect) { return; }
    var bg = geo.bgRect.node(), r = bg.getBoundingClientRect();
    if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) { return; }
    var svg = bg.ownerSVGElement.getBoundingClientRect();
    var lonlat = geo.projection.invert([ev.clientX - svg.left, ev.clientY - svg.top]);
    if (!lonlat || !isFinite(lonlat[0]) || !isFinite(lonlat[1])) { return; }
    var set = window.dash_clientside && window.dash_clientside.set_props;
    if (!set) { return; }
    set({type: "risk-f", field: "lon"}, {value: Math.round(lonlat[0] * 1e6) / 1e6});
    set({type: "risk-f", field: "lat"}, {value: Math.round(lonlat[1] * 1e6) / 1e6});
  }, true);
})();

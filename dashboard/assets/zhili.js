/* Client-side callbacks of the Zhili dashboard: controls and map clicks write the URL
   (the URL is the page's state; the pages router draws the page from it). */
(function () {
  /* The map's geometry, fetched as soon as the unit is known (the page's own URL, or the
     shape clicked) rather than when plotly.js gets to it: plotly.js takes what
     window.PlotlyGeoAssets holds under the figure's geojson URL. Not marked "pending"
     meanwhile: plotly.js gives a pending URL 5 s, then fails; should it get there first,
     it fetches the URL itself. The world outline plotly.js asks for is an empty
     topology anyway. */
  var assets = window.PlotlyGeoAssets = window.PlotlyGeoAssets || {topojson: {}};
  assets.topojson = assets.topojson || {};
  assets.topojson.world_110m = assets.topojson.world_110m ||
    {type: "Topology", objects: {}, arcs: []};
  var prefix = "/dashboard/", fetching = {};
  function prefetchChildren(code) {
    var url = prefix + "geometry/children/" + encodeURIComponent(code) + ".json";
    if (assets[url] || fetching[url]) { return; }
    fetching[url] = true;
    /* asked ahead: a unit outside the user's reach answers 204 (no console error) */
    fetch(url + "?ahead=1", {credentials: "same-origin"})
      .then(function (r) { return r.status === 200 ? r.json() : null; })
      .then(function (json) { if (json && !assets[url]) { assets[url] = json; } })
      .catch(function () { return null; })
      .then(function () { delete fetching[url]; });
  }
  window.zhiliPrefetchChildren = prefetchChildren;
  function touched() { window.__zhiliLastInput = Date.now(); }
  document.addEventListener("pointerdown", touched, true);
  document.addEventListener("keydown", touched, true);
  var here = window.location.pathname.match(/^\/dashboard\/unit\/([^\/?#]+)$/);
  if (here) { prefetchChildren(decodeURIComponent(here[1])); }
})();

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  zhili: {
    controlsToUrl: function (metric, period, start, end, compare, method, keep, smooth, state) {
      var nu = window.dash_clientside.no_update;
      if (!state) { return nu; }
      start = start ? String(start).slice(0, 10) : state.start;
      end = end ? String(end).slice(0, 10) : state.end;
      var datesMoved = start !== state.start || end !== state.end;
      var custom = false;
      if (period !== state.period && period !== "custom") {
        custom = false;                      /* a preset was picked: it wins */
      } else if (datesMoved || period === "custom") {
        custom = true;
      }
      var q = new URLSearchParams();
      q.set("metric", metric || state.metric);
      if (custom) {
        q.set("start", start);
        q.set("end", end);
      } else {
        q.set("period", period === "custom" ? state.period : period);
      }
      q.set("compare", compare || state.compare);
      q.set("method", method || state.method);
      /* "keep breaks": ticked, the shown map's bounds go into the URL for its level;
         unticked, they leave it; otherwise kept breaks ride along unchanged */
      var keepNow = !!(keep && keep.length);
      var keptHere = !!(state.breaks && state.breaks.length &&
                        state.breaks_level === state.level);
      var breaks = state.breaks, level = state.breaks_level;
      if (keepNow && !keptHere && state.bounds && state.bounds.length >= 2) {
        breaks = state.bounds; level = state.level;
      } else if (!keepNow && keptHere) {
        breaks = null; level = null;
      }
      if (breaks && breaks.length && level) {
        q.set("breaks", breaks.join(","));
        q.set("breaks_level", level);
      }
      if (state.show) { q.set("show", state.show); }
      if (state.layers && state.layers.length) { q.set("layers", state.layers.join(",")); }
      var smoothNow = (smooth && smooth.length) ? "eb" : "none";
      if (smoothNow === "eb") { q.set("smooth", "eb"); }
      if (state.lang && state.lang !== "zh") { q.set("lang", state.lang); }
      var unchanged = smoothNow === (state.smooth || "none") && (metric || state.metric) === state.metric &&
        (compare || state.compare) === state.compare &&
        (method || state.method) === state.method &&
        breaks === state.breaks &&
        (custom ? (state.period === "custom" && !datesMoved) : period === state.period);
      if (unchanged) { return nu; }  /* a component settling on mount, not a person */
      window.__zhiliDrawSeq = (window.__zhiliDrawSeq || 0) + 1;  /* drop pending fills */
      return state.prefix + encodeURIComponent(state.code) + "?" + q.toString();
    },
    clickToUrl: function (click, state) {
      var nu = window.dash_clientside.no_update;
      if (!click || !click.points || !click.points.length || !state) { return nu; }
      var point = click.points[0];
      var data = point.customdata && (Array.isArray(point.customdata) ? point.customdata[0] : point.customdata);
      if (typeof data === "string" && data.indexOf("case:") === 0) {  /* a case point: to the desk */
        var lang = new URLSearchParams(window.location.search).get("lang");
        return state.prefix.replace(/unit\/$/, "desk") + "?case=" + data.slice(5) +
          (lang ? "&lang=" + lang : "");
      }
      var code = point.location || (point.customdata && point.customdata[0]);  /* a shape, or an alert marker */
      if (!code) { return nu; }
      window.__zhiliDrawSeq = (window.__zhiliDrawSeq || 0) + 1;  /* drop pending fills */
      if (point.location && window.zhiliPrefetchChildren) {
        window.zhiliPrefetchChildren(code);  /* while the server draws the page */
      }
      return state.prefix + encodeURIComponent(code) + window.location.search;
    },
    whenMapDrawn: function (state) {
      /* the state, once every shape of the map is drawn and the page has had a moment
         to show it (at once without a map; after 4 s at most): the panels below the map
         wait for it, so they neither hold the map back nor crowd a quick next click.
         A state that another has replaced meanwhile (a click, a new metric) is dropped. */
      var nu = window.dash_clientside.no_update;
      if (!state) { return nu; }
      var seq = window.__zhiliDrawSeq = (window.__zhiliDrawSeq || 0) + 1;
      return new Promise(function (resolve) {
        var t0 = Date.now();
        function done() {
          var busy = Date.now() - (window.__zhiliLastInput || 0);
          if (seq === window.__zhiliDrawSeq && busy < 400) {
            setTimeout(done, 400 - busy);  /* a click or a key just now: let it finish */
          } else {
            resolve(seq === window.__zhiliDrawSeq ? state : nu);
          }
        }
        (function poll() {
          var box = document.getElementById("unit-map");
          var gd = box && box.querySelector(".js-plotly-plot");
          var trace = gd && gd.data && gd.data[0];
          var want = trace && trace.locations ? trace.locations.length : -1;
          var drawn = box ? box.querySelectorAll("path.choroplethlocation").length : 0;
          if (!box || !state.level) {
            setTimeout(done, 0);
          } else if ((want >= 0 && drawn === want) ||
                     (box.querySelector("canvas") && want >= 0) || Date.now() - t0 > 4000) {
            setTimeout(done, 400);
          } else {
            setTimeout(poll, 25);
          }
        })();
      });
    },
    shownOf: function (state) {
      if (!state) { return window.dash_clientside.no_update; }
      return {code: state.code, lang: state.lang, map: !!state.level,
              show: state.show || null, layers: (state.layers || []).join(","),
              monthly: !!state.monthly};
    },
    shownLeft: function (href, shown) {
      var onUnit = /\/dashboard\/unit\/[^\/?#]+/.test(href || "");
      return (shown && !onUnit) ? null : window.dash_clientside.no_update;
    },
    wallClock: function (tick, asofMs) {
      /* each second: fit the 1920x1080 stage to the screen, and turn "data as of" red
         when the last good refresh is older than the limit (three refresh intervals) */
      var stage = document.getElementById("wall-stage");
      if (stage) {
        var s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
        var want = "scale(" + s + ")";
        if (stage.style.transform !== want) { stage.style.transform = want; }
      }
      /* Dash's renderer records every prop change a component makes itself (the two
         Intervals' n_intervals, this className) in its undo history, which nothing on a
         wall ever undoes: two entries a second, kept forever, were what the wall's heap
         retained. Keep only the last few (the renderer copies the list on each change). */
      var state = window.store && window.store.getState && window.store.getState();
      var past = state && state.history && state.history.past;
      if (past && past.length > 40) { past.splice(0, past.length - 10); }
      var el = document.getElementById("wall-asof");
      var limit = el ? Number(el.getAttribute("data-limit-ms")) : 180000;
      if (!asofMs) { return "asof stale"; }
      return (Date.now() - asofMs) > limit ? "asof stale" : "asof";
    }
  }
});

/* The date picker's words in the page's language: Dash's picker formats with date-fns and
   takes its locale from window.dateFns.locale (the first one there when none matches the
   browser's language). A Chinese page gets a Chinese locale, an English page none (the
   picker's own English). Asked on every render, so a language switch follows at once. */
(function () {
  function none() { return null; }
  var DAYS = "日一二三四五六";
  var zhCN = {
    code: "zh-CN",
    localize: {
      ordinalNumber: function (n) { return String(n); },
      era: function (i) { return ["公元前", "公元"][i]; },
      quarter: function (q) { return "第" + q + "季度"; },
      month: function (m) {
        return (m + 1) + "月";
      },
      day: function (d, o) {
        var w = o && o.width;
        return w === "wide" ? "星期" + DAYS[d] : w === "abbreviated" ? "周" + DAYS[d] : DAYS[d];
      },
      dayPeriod: function (p) { return p === "am" ? "上午" : p === "pm" ? "下午" : p; }
    },
    formatLong: {
      date: function () { return "yyyy-MM-dd"; },
      time: function () { return "HH:mm:ss"; },
      dateTime: function () { return "{{date}} {{time}}"; }
    },
    formatDistance: function (token, count) { return String(count); },
    formatRelative: function () { return "yyyy-MM-dd"; },
    match: {ordinalNumber: none, era: none, quarter: none, month: none, day: none,
            dayPeriod: none},
    options: {weekStartsOn: 1, firstWeekContainsDate: 4}
  };
  var holder = window.dateFns = window.dateFns || {};
  Object.defineProperty(holder, "locale", {
    configurable: true,
    get: function () {
      return document.querySelector(".lang-en") ? {} : {zhCN: zhCN};
    }
  });
})();

/* Low-count units hatched (a pattern fill over their grey), not a flat fill that reads as a
   class: after every draw of a map, each shape whose class is LOW_COUNT (-1) is filled
   with the pattern. plotly.js has no pattern for choropleth shapes. */
(function () {
  var LOW_COUNT = -1, ID = "zhili-hatch", FILL = "url(\"#" + ID + "\")";
  var NS = "http://www.w3.org/2000/svg";
  function pattern(svg) {
    if (svg.querySelector("#" + ID)) { return; }
    var defs = svg.querySelector("defs") || svg.insertBefore(
      document.createElementNS(NS, "defs"), svg.firstChild);
    var p = document.createElementNS(NS, "pattern");
    p.setAttribute("id", ID);
    p.setAttribute("patternUnits", "userSpaceOnUse");
    p.setAttribute("width", "7");
    p.setAttribute("height", "7");
    p.setAttribute("patternTransform", "rotate(45)");
    var rect = document.createElementNS(NS, "rect");
    rect.setAttribute("width", "7");
    rect.setAttribute("height", "7");
    rect.setAttribute("fill", "#f3efe6");
    var line = document.createElementNS(NS, "line");
    line.setAttribute("x1", "0"); line.setAttribute("y1", "0");
    line.setAttribute("x2", "0"); line.setAttribute("y2", "7");
    line.setAttribute("stroke", "#9c8f74");
    line.setAttribute("stroke-width", "2.5");
    p.appendChild(rect); p.appendChild(line); defs.appendChild(p);
  }
  function hatch(gd) {
    var trace = gd.data && gd.data[0];
    var svg = gd.querySelector("svg.main-svg");
    if (!trace || !trace.z || !svg || trace.type !== "choropleth") { return; }
    pattern(svg);
    var paths = gd.querySelectorAll("path.choroplethlocation");
    for (var i = 0; i < paths.length; i++) {
      var low = trace.z[i] === LOW_COUNT, hatched = paths[i].style.fill === FILL;
      if (low && !hatched) {
        paths[i].style.fill = FILL;
        paths[i].setAttribute("data-low-count", "1");
      } else if (!low && hatched) {
        paths[i].style.fill = "";
        paths[i].removeAttribute("data-low-count");
      }
    }
  }
  function watch() {
    var plots = document.querySelectorAll("#unit-map .js-plotly-plot, #wall-map .js-plotly-plot");
    for (var i = 0; i < plots.length; i++) {
      var gd = plots[i];
      if (!gd.__zhiliHatch && typeof gd.on === "function") {
        gd.__zhiliHatch = true;
        gd.on("plotly_afterplot", hatch.bind(null, gd));
        hatch(gd);
      }
    }
  }
  new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true});
})();

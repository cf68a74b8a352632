/* Client-side callbacks of the map's views: the level picker and the layer toggles write
   the URL (the page is drawn from it), keeping every other parameter as it is. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  zhiliViews: {
    levelToUrl: function (level, state) {
      var nu = window.dash_clientside.no_update;
      if (!state || !level) { return nu; }
      var q = new URLSearchParams(window.location.search);
      var now = q.get("show") || state.level;
      if (level === now) { return nu; }
      q.set("show", level);
      window.__zhiliDrawSeq = (window.__zhiliDrawSeq || 0) + 1;
      return state.prefix + encodeURIComponent(state.code) + "?" + q.toString();
    },
    fitStage: function (tick) {
      /* the composed wall's 1920x1080 stage fitted to the screen */
      var stage = document.getElementById("wall-stage");
      if (stage) {
        var s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
        var want = "scale(" + s + ")";
        if (stage.style.transform !== want) { stage.style.transform = want; }
      }
      return window.dash_clientside.no_update;
    },
    layersToUrl: function (on, state) {
      var nu = window.dash_clientside.no_update;
      if (!state) { return nu; }
      var q = new URLSearchParams(window.location.search);
      var want = (on || []).slice().sort().join(",");
      var have = (q.get("layers") || "").split(",").filter(Boolean).sort().join(",");
      if (want === have) { return nu; }
      if (want) { q.set("layers", want); } else { q.delete("layers"); }
      window.__zhiliDrawSeq = (window.__zhiliDrawSeq || 0) + 1;
      return state.prefix + encodeURIComponent(state.code) + "?" + q.toString();
    }
  }
});

// PathViz slide viewer: OpenSeadragon inside a Streamlit component iframe (component API v1,
// spoken directly with postMessage, so no npm build step is needed).
// Slide tiles and overlay tiles come from PathViz's tile server (pathviz/tileserver.py); both use
// the same DeepZoom geometry (tile 256, overlap 0, level-0 sized), so they align by construction.
(function () {
  "use strict";
  var viewer = null, state = {}, slideKey = null, overlayKey = null, maskKey = null, focusNonce = null;
  var flagOverlays = [];

  function send(type, extra) {
    var msg = Object.assign({ isStreamlitMessage: true, type: type }, extra || {});
    window.parent.postMessage(msg, "*");
  }
  function setHeight(h) { send("streamlit:setFrameHeight", { height: h }); }
  function showError(text) {
    var el = document.getElementById("error");
    el.textContent = text; el.style.display = text ? "block" : "none";
  }
  function dziSource(url, fmt, s) {
    return { Image: { xmlns: "http://schemas.microsoft.com/deepzoom/2008", Url: url, Format: fmt,
                      Overlap: "0", TileSize: String(s.tile_size),
                      Size: { Width: String(s.width), Height: String(s.height) } } };
  }
  function num(x) { return Number(x).toPrecision(6); }

  function itemByTag(tag) {
    if (!viewer) return null;
    for (var i = 0; i < viewer.world.getItemCount(); i++) {
      var it = viewer.world.getItemAt(i);
      if (it.pvTag === tag) return it;
    }
    return null;
  }
  function removeTag(tag) { var it = itemByTag(tag); if (it) viewer.world.removeItem(it); }
  function addLayer(tag, url, opacity, index) {
    viewer.addTiledImage({
      tileSource: dziSource(url, "png", state.slide), opacity: opacity, index: index,
      success: function (ev) { ev.item.pvTag = tag; },
      error: function (ev) { showError("Overlay failed to load: " + (ev.message || url)); }
    });
  }

  function buildViewer(args) {
    if (viewer) { viewer.destroy(); viewer = null; }
    document.getElementById("osd").innerHTML = "";
    overlayKey = null; maskKey = null; flagOverlays = [];
    viewer = OpenSeadragon({
      id: "osd", prefixUrl: "vendor/openseadragon/images/", drawer: "canvas",
      crossOriginPolicy: "Anonymous", showNavigator: true, navigatorPosition: "TOP_RIGHT",
      maxZoomPixelRatio: 4, imageSmoothingEnabled: true, animationTime: 0.6, timeout: 60000,
      tileSources: dziSource(args.tile_url + "/slide/" + args.slide.id + "_files/", "jpeg", args.slide)
    });
    viewer.world.addHandler("add-item", function (ev) { if (viewer.world.getIndexOfItem(ev.item) === 0) ev.item.pvTag = "slide"; });
    viewer.addHandler("open-failed", function (ev) { showError("Slide failed to open: " + ev.message); });
    viewer.addHandler("tile-load-failed", function (ev) { showError("A tile failed to load (" + (ev.message || "") + "); is the tile server running?"); });
    viewer.addHandler("animation", updateStatus);
    viewer.addHandler("open", function () { applyLayers(state); applyFlags(state); applyFocus(state); updateStatus(); });
    new OpenSeadragon.MouseTracker({ element: viewer.container, moveHandler: function (ev) {
      var item = itemByTag("slide"); if (!item) return;
      var p = item.viewerElementToImageCoordinates(ev.position);
      state.cursor = [Math.round(p.x), Math.round(p.y)]; updateStatus();
    } });
    window.pvViewer = viewer;
  }

  function applyLayers(args) {
    if (!viewer || !itemByTag("slide")) return;
    var base = args.tile_url + "/overlay/" + args.slide.id + "/";
    var mk = args.mask && args.mask.show ? "mask" : null;
    if (mk !== maskKey) {
      removeTag("mask");
      if (mk) addLayer("mask", base + "tissue_mask/solid:%2300b050/0/1_files/", args.mask.opacity, 1);
      maskKey = mk;
    } else if (mk && itemByTag("mask")) { itemByTag("mask").setOpacity(args.mask.opacity); }
    var ov = args.overlay;
    // display scale ("value" | "percentile") and transparency floor (0-99) are part of the tile URL,
    // so tiles of different settings never mix (in the browser's cache or the server's)
    var ok = ov ? [ov.layer, ov.cmap, (ov.scale || "value") + "-" + Math.round(ov.floor || 0),
                   num(ov.vmin), num(ov.vmax)].join("/") : null;
    if (ok !== overlayKey) {
      removeTag("overlay");
      if (ov) addLayer("overlay", base + ok + "_files/", ov.opacity, viewer.world.getItemCount());
      overlayKey = ok;
    } else if (ov && itemByTag("overlay")) { itemByTag("overlay").setOpacity(ov.opacity); }
  }

  function applyFlags(args) {
    if (!viewer || !itemByTag("slide")) return;
    flagOverlays.forEach(function (el) { viewer.removeOverlay(el); });
    flagOverlays = [];
    var item = itemByTag("slide");
    (args.flags || []).forEach(function (f) {
      var el = document.createElement("div");
      el.className = "pv-flag" + (args.focus && args.focus.rank === f.rank ? " pv-focus" : "");
      var lab = document.createElement("span"); lab.textContent = f.rank; el.appendChild(lab);
      var rect = item.imageToViewportRectangle(f.x, f.y, f.w, f.h);
      viewer.addOverlay({ element: el, location: rect });
      flagOverlays.push(el);
    });
  }

  function applyFocus(args) {
    var f = args.focus;
    if (!viewer || !f || f.nonce === focusNonce || !itemByTag("slide")) return;
    focusNonce = f.nonce;
    var item = itemByTag("slide");
    var pad = Math.max(f.w, f.h) * 2;
    var rect = item.imageToViewportRectangle(f.x - pad, f.y - pad, f.w + 2 * pad, f.h + 2 * pad);
    viewer.viewport.fitBounds(rect, false);
    // bring the viewer into sight when the request came from the gallery further down the page
    try { if (window.frameElement) window.frameElement.scrollIntoView({ behavior: "smooth", block: "center" }); } catch (e) { /* cross-origin host */ }
  }

  function niceLength(um) {
    var steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
    for (var i = steps.length - 1; i >= 0; i--) if (steps[i] <= um) return steps[i];
    return steps[0];
  }
  function updateStatus() {
    var item = itemByTag("slide"); if (!item || !state.slide) return;
    var zoom = item.viewportToImageZoom(viewer.viewport.getZoom(true)); // screen px per level-0 px
    var umPerScreenPx = state.slide.mpp / zoom;
    var mag = state.slide.mpp > 0 ? (10 / umPerScreenPx) : 0;  // 1 um/px ~ 10x
    var len = niceLength(umPerScreenPx * 120);
    var bar = document.querySelector("#scalebar .bar");
    bar.style.width = Math.round(len / umPerScreenPx) + "px";
    document.querySelector("#scalebar .label").textContent = len >= 1000 ? (len / 1000) + " mm" : len + " µm";
    var txt = "≈" + mag.toFixed(mag < 10 ? 1 : 0) + "x · " + umPerScreenPx.toFixed(2) + " µm/screen px";
    if (state.cursor) txt += " · x " + state.cursor[0] + ", y " + state.cursor[1] + " (level 0)";
    document.getElementById("status").textContent = txt;
  }

  function render(args) {
    state = Object.assign({}, args, { cursor: state.cursor });
    var h = args.height || 600;
    document.getElementById("osd").style.height = h + "px";
    setHeight(h + 4);
    showError("");
    var key = args.tile_url + "|" + args.slide.id;
    if (key !== slideKey) { slideKey = key; buildViewer(args); return; }
    applyLayers(args); applyFlags(args); applyFocus(args); updateStatus();
  }

  window.addEventListener("message", function (ev) {
    var d = ev.data;
    if (d && d.type === "streamlit:render") {
      try { render(d.args); } catch (e) { showError("Viewer error: " + e); }
    }
  });
  send("streamlit:componentReady", { apiVersion: 1 });
})();

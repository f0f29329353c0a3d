// The consent signature: a signature_pad canvas whose PNG goes in the form on submit.
(function () {
  "use strict";
  function start() {
    var canvas = document.getElementById("signature-pad");
    if (!canvas || typeof SignaturePad === "undefined") return;
    var pad = new SignaturePad(canvas, { penColor: "rgb(0, 0, 0)" });
    var field = document.getElementById("signature-data");
    // a refused signing keeps the drawn signature: it is drawn back until cleared
    var keptUrl = field.value;
    function fit() {
      var ratio = Math.max(window.devicePixelRatio || 1, 1);
      var strokes = pad.toData();
      canvas.width = canvas.offsetWidth * ratio;
      canvas.height = canvas.offsetHeight * ratio;
      canvas.getContext("2d").scale(ratio, ratio);
      pad.clear();
      if (keptUrl) {
        pad.fromDataURL(keptUrl, { width: canvas.offsetWidth, height: canvas.offsetHeight });
      }
      if (strokes.length) pad.fromData(strokes, { clear: false });
    }
    window.addEventListener("resize", fit);
    fit();
    document.getElementById("signature-clear").addEventListener("click", function () {
      keptUrl = "";
      field.value = "";
      pad.clear();
    });
    document.getElementById("consent-form").addEventListener("submit", function (event) {
      var missing = document.getElementById("signature-missing");
      if (pad.isEmpty()) {
        event.preventDefault();
        missing.hidden = false;
        return;
      }
      missing.hidden = true;
      field.value = pad.toDataURL("image/png");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

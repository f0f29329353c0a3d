// ketacare page behaviour that needs no inline script (the Content-Security-Policy forbids it).
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("htmx-error");
  if (!box) {
    box = document.createElement("p");
    box.id = "htmx-error";
    box.className = "alert";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  box.textContent = "The request failed (" + event.detail.xhr.status + "). Reload the page and try again.";
});

// Skip logic of questionnaires: an item with data-enable-item shows only when that item has
// the answer in data-enable-equals; a hidden item's answer is cleared so it is not sent.
function ketacareSkipLogic(form) {
  form.querySelectorAll("fieldset[data-enable-item]").forEach(function (fs) {
    var source = form.querySelector('input[name="item_' + fs.dataset.enableItem + '"]:checked');
    var show = source !== null && source.value === fs.dataset.enableEquals;
    fs.hidden = !show;
    if (!show) { fs.querySelectorAll("input").forEach(function (i) { i.checked = false; }); }
  });
}
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.questionnaire").forEach(function (form) {
    ketacareSkipLogic(form);
    form.addEventListener("change", function () { ketacareSkipLogic(form); });
  });
});

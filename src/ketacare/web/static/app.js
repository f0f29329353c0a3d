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

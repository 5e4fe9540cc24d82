// Light interactivity for the intake form: numbers checked as typed (by the server's own rules),
// earlier cases of the same people, and rows for more parties. The forms work without it.
(function () {
  "use strict";
  var csrf = document.body.dataset.csrf;

  function post(url, data) {
    data.append("csrf", csrf);
    return fetch(url, { method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf } }).then(function (r) { return r.ok ? r.text() : ""; });
  }

  function debounce(fn, ms) {
    var t; return function () { var self = this, args = arguments; clearTimeout(t); t = setTimeout(function () { fn.apply(self, args); }, ms); };
  }

  function checkField(input) {
    var box = input.closest(".field");
    var party = input.closest("fieldset.party");
    var idType = party ? party.querySelector('[name$=".id_type"]') : null;
    var data = new FormData();
    data.append("field", input.dataset.check);
    data.append("value", input.value);
    data.append("id_type", idType ? idType.value : "");
    post("/intake/check", data).then(function (html) {
      box.querySelectorAll(".error, .ok, .check-result").forEach(function (el) { el.remove(); });
      var holder = document.createElement("div");
      holder.className = "check-result";
      holder.setAttribute("aria-live", "polite");
      holder.innerHTML = html;
      box.appendChild(holder);
      var bad = !!holder.querySelector(".error");
      box.classList.toggle("invalid", bad);
      input.setAttribute("aria-invalid", bad ? "true" : "false");
    });
  }

  var related = debounce(function (form) {
    var target = document.getElementById("related-hint");
    if (!target || !form.dataset.relatedUrl) return;
    post(form.dataset.relatedUrl, new FormData(form)).then(function (html) { target.innerHTML = html; });
  }, 500);

  // One timer per field: typing in one field never cancels the check of another.
  var timers = new WeakMap();
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input.matches && input.matches("[data-check]"))) return;
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(function () { checkField(input); related(input.form); }, 350));
  });
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches('[name$=".id_type"]')) {
      var number = el.closest("fieldset.party").querySelector('[data-check="id_number"]');
      if (number && number.value) checkField(number);
    }
  });

  var add = document.getElementById("add-party");
  if (add) {
    add.addEventListener("click", function () {
      var list = document.getElementById("parties");
      var index = list.querySelectorAll("fieldset.party").length;
      var html = document.getElementById("party-template").innerHTML
        .replace(/parties\[999\]/g, "parties[" + index + "]")
        .replace(/parties-999-/g, "parties-" + index + "-")
        .replace(/当事人 <\/legend>/, "当事人 " + (index + 1) + "</legend>");
      list.insertAdjacentHTML("beforeend", html);
      var row = list.lastElementChild;
      var role = row.querySelector('[name$=".role"]');
      if (role) role.value = "third_party";
      row.querySelector("input, select").focus();
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.matches(".remove-party")) event.target.closest("fieldset.party").remove();
    if (event.target.matches("[data-print]")) window.print();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
  });
})();

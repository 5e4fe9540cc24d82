// Light interactivity for the forms: numbers checked as typed (by the server's own rules), earlier
// cases of the same people, rows for more parties, and fields' length. The forms work without it.
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

  // A text longer than a field takes is cut at its limit by the browser without a word: pasted
  // notes or facts would lose their tail unseen. Near the limit the field counts its characters,
  // and a paste that was cut says how much of it was left out.
  function lengthNote(field) {
    var id = field.id + "-length";
    var note = document.getElementById(id);
    if (!note) {
      note = document.createElement("p");
      note.id = id;
      note.className = "hint length-note";
      note.setAttribute("aria-live", "polite");
      field.insertAdjacentElement("afterend", note);
      var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(id) < 0) field.setAttribute("aria-describedby", described.concat(id).join(" "));
    }
    return note;
  }
  function countLength(field, cut) {
    var max = field.maxLength, used = field.value.length;
    if (!field.id || max <= 0 || (!cut && used < max * 0.8 && !document.getElementById(field.id + "-length"))) return;
    var note = lengthNote(field);
    note.classList.toggle("error", cut > 0);
    note.textContent = cut > 0
      ? "粘贴的内容超出本栏 " + max + " 字的上限, 末尾 " + cut + " 字没有粘贴进来, 请删减后补上"
      : "已输入 " + used + " / " + max + " 字";
  }
  var limited = "textarea[maxlength], input[maxlength]:not([type=password])";
  document.addEventListener("paste", function (event) {
    var field = event.target;
    if (!(field.matches && field.matches(limited)) || !event.clipboardData) return;
    // What the field would take of the text: a text box keeps line breaks as one character each;
    // a one-line box drops the trailing ones (a copied spreadsheet cell ends with one) and makes
    // any inner one a space.
    var text = event.clipboardData.getData("text/plain").replace(/\r\n?/g, "\n");
    if (field.tagName !== "TEXTAREA") text = text.replace(/\n+$/, "");
    var kept = field.value.length - Math.abs((field.selectionEnd || 0) - (field.selectionStart || 0));
    setTimeout(function () {  // once the paste is in: what it added, against what was pasted
      var cut = field.value.length < field.maxLength ? 0 : text.length - (field.value.length - kept);
      countLength(field, Math.max(cut, 0));
    }, 0);
  });
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field.matches && field.matches(limited) && event.inputType !== "insertFromPaste") countLength(field, 0);
  });

  // A party row shows what its kind and role take: an organisation's legal representative, the
  // party an agent acts for. A field with something in it, or refused, stays shown: hidden, it
  // would be sent unseen.
  function showIf(input, wanted) {
    if (!input) return;
    var box = input.closest(".field");
    box.hidden = !wanted && !input.value && !box.classList.contains("invalid");
  }
  function fitParty(row) {
    var kind = row.querySelector('[name$=".kind"]'), role = row.querySelector('[name$=".role"]');
    showIf(row.querySelector('[name$=".legal_representative"]'), kind && kind.value === "organisation");
    showIf(row.querySelector('[name$=".represents"]'), role && role.value === "agent");
  }
  document.querySelectorAll("#parties fieldset.party").forEach(fitParty);
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches('#parties [name$=".kind"], #parties [name$=".role"]')) fitParty(el.closest("fieldset.party"));
  });
  // The party an agent acts for is chosen among the rows as they are numbered (当事人 1 is "0");
  // a row removed is no longer a choice, and the rows after it move up one.
  function partyChoices(removed) {
    var rows = document.querySelectorAll("#parties fieldset.party");
    document.querySelectorAll('#parties select[name$=".represents"]').forEach(function (select) {
      var value = select.value === "" ? null : Number(select.value);
      if (removed !== undefined && value !== null) value = value === removed ? null : value > removed ? value - 1 : value;
      while (select.options.length > 1) select.remove(1);
      rows.forEach(function (_, i) { select.add(new Option("当事人 " + (i + 1), String(i))); });
      select.value = value === null || value >= rows.length ? "" : String(value);
    });
  }

  var add = document.getElementById("add-party");
  if (add) {
    add.addEventListener("click", function () {
      var list = document.getElementById("parties");
      // Never an index a row holds: after a removal, the count of rows can name a row still there.
      var index = Math.max(Number(list.dataset.nextIndex) || 0, list.querySelectorAll("fieldset.party").length);
      list.dataset.nextIndex = index + 1;
      var html = document.getElementById("party-template").innerHTML
        .replace(/parties\[999\]/g, "parties[" + index + "]")
        .replace(/parties-999-/g, "parties-" + index + "-")
        .replace(/data-party="999"/, 'data-party="' + index + '"')
        .replace(/当事人 <\/legend>/, "当事人 " + (list.querySelectorAll("fieldset.party").length + 1) + "</legend>");
      list.insertAdjacentHTML("beforeend", html);
      var row = list.lastElementChild;
      var role = row.querySelector('[name$=".role"]');
      if (role) role.value = "third_party";
      partyChoices();
      fitParty(row);
      row.querySelector("input, select").focus();
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.matches(".remove-party")) {
      var gone = event.target.closest("fieldset.party");
      var place = Array.prototype.indexOf.call(document.querySelectorAll("#parties fieldset.party"), gone);
      gone.remove();
      partyChoices(place);
      // The rows are numbered as the clerk sees them; their field names keep their own indices.
      document.querySelectorAll("#parties fieldset.party > legend").forEach(function (legend, i) {
        legend.textContent = "当事人 " + (i + 1);
      });
    }
    if (event.target.matches("[data-print]")) window.print();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
  });

  // A step that cannot be undone (linking cases, a new query code, ...) is confirmed first, in
  // words saying what cannot be undone. Registered before the session check below, so that a step
  // not confirmed is not sent at all; without scripts the form is sent as it is.
  document.addEventListener("submit", function (event) {
    var form = event.target, button = event.submitter;
    var text = (button && button.dataset.confirm) || form.dataset.confirm;
    if (!text || form.dataset.confirmed) return;
    if (window.confirm(text)) { form.dataset.confirmed = "1"; return; }
    event.preventDefault();
    event.stopImmediatePropagation();
  });

  // A refused form comes back at the top of the page: its error summary takes the focus, so that it
  // is read out and seen; each of its links moves the focus to its field, however far down. A page
  // without one may name what its answer is (`data-focus`: the lookup's refusal or result).
  var summary = document.querySelector(".error-summary") || document.querySelector("[data-focus]");
  if (summary) summary.focus();
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-summary a[href^='#']");
    if (!link) return;
    var target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    if (!target.matches("input, select, textarea, button")) target = target.querySelector("input, select, textarea") || target;
    var label = target.id ? document.querySelector('label[for="' + target.id + '"]') : null;
    (label || target).scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  });

  // A signed-in clerk typing is working: the session is renewed as they type (at most every two
  // minutes), and a session that ended meanwhile is said before the form is sent, so nothing typed
  // is lost: they sign in again in another tab and send the form from this one.
  if (!("signedIn" in document.body.dataset)) return;
  var renewedAt = Date.now();
  function renew() {
    renewedAt = Date.now();
    return fetch("/session/renew", { credentials: "same-origin", cache: "no-store" }).then(function (r) { return r.status !== 401; }, function () { return true; });
  }
  function expired(form) {
    if (form.querySelector(".session-expired")) return;
    var note = document.createElement("p");
    note.className = "error banner session-expired";
    note.setAttribute("role", "alert");
    note.innerHTML = '登录已过期, 表单尚未提交。请<a href="/login" target="_blank" rel="noopener">在新窗口重新登录</a>, ' +
      "然后回到本页再次提交, 已填写的内容仍在。";
    form.insertBefore(note, form.firstChild);
    note.scrollIntoView({ block: "center" });
  }
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (!form || form.method !== "post" || Date.now() - renewedAt < 120000) return;
    renew().then(function (alive) { if (!alive) expired(form); });
  });
  // Every form a signed-in member of staff sends (signing out aside) is checked first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method !== "post" || form.dataset.sessionChecked || /\/logout$/.test(form.action)) return;
    event.preventDefault();
    renew().then(function (alive) {
      if (!alive) { expired(form); return; }
      var stale = form.querySelector(".session-expired");
      if (stale) stale.remove();
      form.dataset.sessionChecked = "1";
      if (!form.requestSubmit) { form.submit(); return; }  // older browsers: no submitter to keep
      if (event.submitter) form.requestSubmit(event.submitter); else form.requestSubmit();
    });
  });
})();

/* mailsec: small progressive enhancements. Every page works without them: "Check now" then
   posts the form and redirects back, and example records stay readable, selectable text. */
(function () {
  "use strict";
  var FRAGMENT = { "X-Mailsec-Fragment": "1" };
  var POLL_MS = 1500;
  var POLL_LIMIT = 400;  /* 10 minutes: a check is long done or lost by then */
  var polls = 0;

  /* Replace `target` with the HTML fragment; keep polling if the new element asks for it. */
  function swap(target, html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var element = template.content.firstElementChild;
    if (!element) return;
    target.replaceWith(element);
    poll(element);
    refresh(element);
  }

  /* A finished run names (data-refresh) a fragment of the parts of the page it changed: each
     top-level element of it replaces the page's element with the same id. */
  function refresh(element) {
    if (!element.dataset.refresh) return;
    fetch(element.dataset.refresh, { headers: FRAGMENT, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html;
        Array.prototype.slice.call(template.content.children).forEach(function (part) {
          var old = part.id && document.getElementById(part.id);
          if (!old) return;
          old.replaceWith(part);
          part.querySelectorAll("button[data-copy]").forEach(copyButton);
        });
        element.dataset.refreshed = "1";
      })
      .catch(function () {
        element.insertAdjacentHTML("beforeend", "<p>Could not update the page: reload it.</p>");
      });
  }

  function lost(target) {
    swap(target, '<div id="' + target.id + '" class="check-status" role="status">' +
      '<p class="error">Lost track of its progress: reload the page.</p></div>');
  }

  function poll(element) {
    if (!element.dataset.poll) return;
    if (++polls > POLL_LIMIT) {
      element.insertAdjacentHTML("beforeend", "<p>Still waiting: reload the page later.</p>");
      return;
    }
    window.setTimeout(function () {
      fetch(element.dataset.poll, { headers: FRAGMENT, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.text();
        })
        .then(function (html) { swap(element, html); })
        .catch(function () { lost(element); });
    }, POLL_MS);
  }

  function checkNow(form) {
    form.addEventListener("submit", function (event) {
      var target = document.getElementById(form.dataset.target);
      if (!target || !window.fetch) return;  // the plain POST and redirect
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      fetch(form.action, {
        method: "POST", body: new FormData(form), headers: FRAGMENT, credentials: "same-origin"
      })
        .then(function (response) {
          if (!response.ok && response.status !== 429) throw new Error(response.status);
          return response.text();
        })
        .then(function (html) { swap(target, html); })
        .catch(function () { lost(target); })
        .finally(function () { button.disabled = false; });
    });
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyButton(button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    // The words come from the page (data-copied, data-copy-failed on an enclosing element),
    // in the reader's language; the button's own text is what it returns to.
    var words = button.closest("[data-copied]");
    var label = button.textContent;
    var copied = words ? words.dataset.copied : "Copied";
    var failed = words ? words.dataset.copyFailed : "Select and copy";
    button.hidden = false;
    button.addEventListener("click", function () {
      copy(source.textContent).then(
        function () { button.textContent = copied; },
        function () { button.textContent = failed; }
      );
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  }

  /* The mailbox form: the folder fields mean nothing over POP3 (the server ignores them). */
  function protocolChoice(select) {
    function show() {
      select.form.querySelectorAll("[data-imap-only]").forEach(function (part) {
        part.hidden = select.value !== "imap";
      });
    }
    select.addEventListener("change", show);
    show();
  }

  document.querySelectorAll("[data-poll]").forEach(poll);
  document.querySelectorAll("select[data-protocol]").forEach(protocolChoice);
  document.querySelectorAll("form[data-check-now]").forEach(checkNow);
  document.querySelectorAll("button[data-copy]").forEach(copyButton);
})();

// The web workspace's one script (the Content-Security-Policy allows no inline script).
// Keys: an element with data-key="x" is clicked when x is pressed outside a form field;
// j/k move through the queue's rows, Enter opens one; ? shows the keys.
(function () {
  "use strict";
  var rows = [], current = -1, leaving = true;

  function inField(t) {
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function move(step) {
    if (!rows.length) return false;
    if (current >= 0) rows[current].classList.remove("current");
    current = Math.max(0, Math.min(rows.length - 1, current + step));
    rows[current].classList.add("current");
    var link = rows[current].querySelector("a");
    if (link) link.focus();
    return true;
  }
  function toggleKeys() {
    var box = document.getElementById("keys");
    if (!box) return;
    box.hidden = !box.hidden;
    if (!box.hidden) box.querySelector("button").focus();
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || inField(e.target)) return;
    if (e.key === "?") { e.preventDefault(); toggleKeys(); return; }
    if (e.key === "Escape") { var box = document.getElementById("keys"); if (box) box.hidden = true; return; }
    if ((e.key === "j" || e.key === "k") && move(e.key === "j" ? 1 : -1)) { e.preventDefault(); return; }
    var el = document.querySelector('[data-key="' + (e.key === '"' ? '\\"' : e.key) + '"]');
    if (el) { e.preventDefault(); el.click(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr[data-id]"));
    var close = document.getElementById("keys-close");
    if (close) close.addEventListener("click", toggleKeys);
    var open = document.getElementById("keys-open");
    if (open) open.addEventListener("click", toggleKeys);

    // tick all on this page; "all N matching" switches the bulk form to the whole view
    var all = document.getElementById("tick-all");
    if (all) all.addEventListener("change", function () {
      document.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = all.checked; });
    });
    var matching = document.getElementById("all-matching");
    if (matching) matching.addEventListener("change", function () {
      document.getElementById("bulk-scope").value = matching.checked ? "matching" : "ticked";
      document.getElementById("bulk-count").textContent = matching.checked
        ? matching.dataset.label : "the ticked items";
    });

    // forms marked data-confirm ask once more before sending
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
    });

    // leaving an item gives its claim back (a form on the page does its own thing)
    var release = document.body.dataset.release;
    if (release) {
      document.addEventListener("submit", function () { leaving = false; }, true);
      window.addEventListener("pagehide", function () {
        if (!leaving) return;
        var data = new FormData();
        data.append("csrf", document.body.dataset.csrf);
        navigator.sendBeacon(release, data);
      });
    }

    // the customer picker asks the server (no list of every customer in the page)
    document.querySelectorAll("input[data-picker]").forEach(function (input) {
      var list = document.getElementById(input.getAttribute("list")), timer = null;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var q = input.value.trim();
          if (q.length < 2) return;
          fetch("/api/customers?q=" + encodeURIComponent(q), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : []; })
            .then(function (found) {
              list.textContent = "";
              found.forEach(function (c) {
                var o = document.createElement("option");
                o.value = c.customer_id; o.textContent = c.name; list.appendChild(o);
              });
            });
        }, 200);
      });
    });

    allocationCheck();
  });

  // the manual allocation form checks its sum in the page (exact: integer minor units, never a float)
  function allocationCheck() {
    var form = document.getElementById("allocate");
    if (!form) return;
    var exp = parseInt(form.dataset.exponent, 10), out = document.getElementById("alloc-check"), touched = false;
    function minor(text) {
      text = text.trim().replace(/,/g, ""); if (text === "") return 0n;
      var m = /^(\d+)(?:\.(\d*))?$/.exec(text);
      if (!m || (m[2] || "").length > exp) return null;
      return BigInt(m[1] + (m[2] || "").padEnd(exp, "0"));
    }
    function show(v) { var s = v.toString().padStart(exp + 1, "0"); return exp ? s.slice(0, -exp) + "." + s.slice(-exp) : s; }
    function check() {
      var pay = minor(form.dataset.payment), total = 0n, any = false;
      var inputs = form.querySelectorAll("input.alloc");
      for (var i = 0; i < inputs.length; i++) {
        var v = minor(inputs[i].value);
        if (v === null) return "\"" + inputs[i].value + "\" is not an amount (up to " + exp + " decimals)";
        if (inputs[i].value.trim() !== "") any = true;
        total += v;
      }
      if (!any) return "Enter the amount to allocate to at least one invoice (or on account).";
      if (total > pay) return "The amounts add up to " + show(total) + ", more than the payment of " + show(pay) + ".";
      if (total < pay && !document.getElementById("rest").checked)
        return "The amounts add up to " + show(total) + ": " + show(pay - total) + " of the payment is unallocated (tick 'keep what is left on account').";
      return "";
    }
    function update() {
      var problem = check();
      if (!touched && problem) { out.textContent = ""; out.className = ""; return problem; }  // nothing typed yet
      out.textContent = problem || "The amounts add up."; out.className = problem ? "bad" : "good";
      return problem;
    }
    form.addEventListener("input", function () { touched = true; update(); });
    form.addEventListener("change", function () { touched = true; update(); });
    update();
    form.addEventListener("submit", function (e) { touched = true; if (update()) e.preventDefault(); });
  }
})();

// Progressive enhancement only: every page works without this file.
// 1. An error summary takes the focus, so a screen reader announces it and Tab starts there.
// 2. Fields marked data-lookup="organizations" or "groups" suggest matches as one types;
//    choosing one fills the field with the name (the server matches names, ignoring case).
(function () {
  "use strict";
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
    // A link of the summary moves the focus into its field, not only the scroll position.
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var target = link && document.getElementById(link.getAttribute("href").slice(1));
      if (target) { event.preventDefault(); target.focus(); target.scrollIntoView({ block: "center" }); }
    });
  }

  function debounce(fn, ms) {
    var timer;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  document.querySelectorAll("input[data-lookup]").forEach(function (input) {
    var kind = input.getAttribute("data-lookup");
    var list = document.createElement("ul");
    list.className = "suggestions";
    list.id = input.id + "-suggestions";
    var status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");
    input.setAttribute("aria-controls", list.id);
    input.insertAdjacentElement("afterend", list);
    list.insertAdjacentElement("afterend", status);

    function show(items) {
      list.textContent = "";
      items.forEach(function (item) {
        var li = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = item.label;
        button.addEventListener("click", function () {
          input.value = item.value;
          list.textContent = "";
          status.textContent = "Chosen: " + item.label;
          input.focus();
        });
        li.appendChild(button);
        list.appendChild(li);
      });
      status.textContent = items.length ? items.length + " suggestion" + (items.length === 1 ? "" : "s") + " below" : "";
    }

    var lookup = debounce(function () {
      var text = input.value.trim();
      if (text.length < 2) { show([]); return; }
      var url;
      if (kind === "organizations") {
        url = "/lookup/organizations?q=" + encodeURIComponent(text);
      } else {
        var org = document.getElementById(input.getAttribute("data-organization-field"));
        if (!org || !org.value.trim()) { show([]); return; }
        url = "/lookup/groups?organization=" + encodeURIComponent(org.value.trim()) +
              "&q=" + encodeURIComponent(text);
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : {}; })
        .then(function (data) {
          var items = (data.organizations || []).map(function (o) {
            return { value: o.name, label: o.name + " (TIN/EIN or NPI " + o.identifier + ")" };
          }).concat((data.groups || []).map(function (grp) {
            return { value: grp.name, label: grp.name };
          }));
          show(items);
        })
        .catch(function () { show([]); });
    }, 250);
    input.addEventListener("input", lookup);
  });
})();

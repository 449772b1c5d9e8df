// Attest's small progressive enhancements. Every page works without this file.
(() => {
  const csrf = () => document.body?.dataset.csrf ?? "";

  // Times: the server writes UTC; show them in the viewer's time zone (the UTC stays in the title).
  const timeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  function localizeTimes(root) {
    for (const el of (root ?? document).querySelectorAll("time[datetime]:not([data-local])")) {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      el.textContent = timeFormat.format(when);
      el.title = `${el.getAttribute("datetime")} (UTC)`;
      el.dataset.local = "1";
    }
  }

  document.addEventListener("DOMContentLoaded", () => localizeTimes(document));
  document.addEventListener("htmx:after:swap", () => localizeTimes(document));
  document.addEventListener("htmx:after:settle", () => localizeTimes(document));

  // htmx requests carry the CSRF token in a header too (forms also carry it as a field).
  document.addEventListener("htmx:config:request", (event) => {
    const headers = event.detail?.ctx?.request?.headers ?? event.detail?.headers;
    if (headers) headers["X-CSRF-Token"] = csrf();
  });

  // "/" focuses the page's search box.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)))
      return;
    const search = document.querySelector("[data-search]");
    if (search) {
      event.preventDefault();
      search.focus();
      search.select?.();
    }
  });

  // Selects that submit their form when changed (tenant switcher).
  document.addEventListener("change", (event) => {
    const el = event.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit")) el.form?.requestSubmit();
  });

  // Plain forms that ask before doing something irreversible.
  document.addEventListener(
    "submit",
    (event) => {
      const form = event.target;
      if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true,
  );

  window.attest = { localizeTimes, csrf };
})();

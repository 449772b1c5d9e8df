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

  // On a phone the workspace links are one row that scrolls sideways: bring the current page's
  // link into that row's view (only sideways: the page itself does not move).
  document.addEventListener("DOMContentLoaded", () => {
    const row = document.querySelector("nav.sidebar .links");
    const current = row?.querySelector('a[aria-current="page"]');
    if (!row || !current || row.scrollWidth <= row.clientWidth) return;
    const left = current.offsetLeft - row.offsetLeft;
    if (left < row.scrollLeft || left + current.offsetWidth > row.scrollLeft + row.clientWidth) {
      row.scrollLeft = Math.max(0, left - (row.clientWidth - current.offsetWidth) / 2);
    }
  });

  // The viewer's time zone, for pages that show times in it (the Audit Log). The page says which
  // zone it used; when that was a guess (no ?tz= and no cookie yet), it is shown again once.
  const browserZone = (() => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch {
      return "UTC";
    }
  })();
  document.cookie = `attest_tz=${encodeURIComponent(browserZone)}; path=/; max-age=31536000; samesite=lax`;
  document.addEventListener("DOMContentLoaded", () => {
    const line = document.getElementById("zone-line");
    if (!line || line.dataset.zoneExplicit === "true" || line.dataset.zone === browserZone) return;
    if (sessionStorage.getItem("attest-zone-reloaded") === browserZone) return; // the server does not know it
    sessionStorage.setItem("attest-zone-reloaded", browserZone);
    window.location.reload();
  });

  // On a phone, filters that are not in use start folded, so the first entries are in view.
  document.addEventListener("DOMContentLoaded", () => {
    if (!window.matchMedia("(max-width: 600px)").matches) return;
    for (const el of document.querySelectorAll('details[data-phone-collapse="yes"]')) el.removeAttribute("open");
  });

  // A checkbox list folded into a <details> says what is chosen in its summary.
  document.addEventListener("change", (event) => {
    const list = event.target instanceof Element ? event.target.closest("details.multi") : null;
    const value = list?.querySelector("summary .value");
    if (!list || !value) return;
    const chosen = [...list.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
    value.textContent =
      chosen.length === 0 ? "All actions" : chosen.length === 1 ? chosen[0] : `${chosen.length} actions`;
  });

  // Fields that reset others when changed (a preset range clears From/To, and the other way).
  document.addEventListener("change", (event) => {
    const el = event.target;
    const selector = el instanceof HTMLElement ? el.dataset.clears : undefined;
    if (!selector) return;
    for (const other of document.querySelectorAll(selector)) other.value = "";
  });

  // After paging the Audit Log, the reader starts at the top of the new entries.
  let paging = false;
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest(".pager a")) paging = true;
  });
  document.addEventListener("submit", (event) => {
    if (event.target instanceof Element && event.target.closest(".pager")) paging = true;
  });
  document.addEventListener("htmx:after:swap", () => {
    if (!paging) return;
    paging = false;
    const table = document.querySelector("#audit-results .log, #audit-results .empty");
    if (table) {
      table.setAttribute("tabindex", "-1");
      table.focus({ preventScroll: true });
      table.scrollIntoView({ block: "start" });
    }
  });

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
      // A form that htmx submits asks through its hx-confirm instead (once, not twice).
      if (form instanceof HTMLFormElement && form.hasAttribute("hx-confirm") && window.htmx) return;
      if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true,
  );

  // Copy buttons (shown only when the clipboard is available): data-copy names the element to copy.
  function showCopyButtons(root) {
    if (!navigator.clipboard) return;
    for (const button of (root ?? document).querySelectorAll("button[data-copy][hidden]")) button.hidden = false;
  }
  document.addEventListener("DOMContentLoaded", () => showCopyButtons(document));
  document.addEventListener("htmx:after:settle", () => showCopyButtons(document));
  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
    const source = button && document.querySelector(button.dataset.copy);
    if (!source) return;
    const label = button.dataset.label ?? button.textContent;
    button.dataset.label = label;
    try {
      await navigator.clipboard.writeText("value" in source ? source.value : source.textContent);
      button.textContent = "Copied";
    } catch {
      source.select?.();
      button.textContent = "Press Ctrl+C to copy";
    }
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });

  // Uploads (forms marked data-upload): the same multipart request, sent with XMLHttpRequest so a
  // <progress data-upload-progress> can show how far it is; the server answers JSON. Afterwards the
  // events named in data-upload-events are fired on the document (htmx parts listening for them
  // reload themselves), or the page reloads. data-max-bytes rejects files that are too large first.
  const sizeText = (bytes) => {
    const [n, unit] = bytes >= 1024 * 1024 ? [bytes / (1024 * 1024), "MB"] : [bytes / 1024, "KB"];
    return `${(n < 10 ? n.toFixed(1) : n.toFixed(0)).replace(/\.0$/, "")} ${unit}`;
  };
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-upload") || event.defaultPrevented) return;
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    const input = form.querySelector('input[type="file"]');
    const progress = form.querySelector("[data-upload-progress]");
    const status = form.querySelector("[data-upload-status]");
    const button = form.querySelector("button[type=submit], button:not([type])");
    const say = (text, kind) => {
      if (!status) return;
      status.textContent = text;
      status.dataset.kind = kind ?? "";
    };
    const files = [...(input?.files ?? [])];
    if (files.length === 0) return say("Choose at least one file to upload.", "error");
    const max = Number(form.dataset.maxBytes);
    const tooBig = max > 0 ? files.filter((f) => f.size > max) : [];
    if (tooBig.length > 0) {
      const names = tooBig.map((f) => `“${f.name}” (${sizeText(f.size)})`).join(", ");
      return say(
        `${names} ${tooBig.length === 1 ? "is" : "are"} larger than the ${sizeText(max)} limit per file; nothing was uploaded.`,
        "error",
      );
    }
    const finish = () => {
      form.removeAttribute("aria-busy");
      if (button) button.disabled = false;
      if (progress) progress.hidden = true;
    };
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      if (progress) {
        progress.value = percent;
        progress.textContent = `${percent}%`;
      }
      say(percent < 100 ? `Uploading… ${percent}%` : "Saving…");
    });
    xhr.addEventListener("load", () => {
      finish();
      let body;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300 && Array.isArray(body?.evidence)) {
        const n = body.evidence.length;
        form.reset();
        say(`Uploaded ${n} ${n === 1 ? "file" : "files"}.`, "ok");
        const events = (form.dataset.uploadEvents ?? "").split(/\s+/).filter(Boolean);
        if (window.htmx && events.length > 0) {
          for (const name of events) document.dispatchEvent(new CustomEvent(name, { bubbles: true }));
        } else {
          window.location.reload();
        }
        return;
      }
      say(
        body?.error?.message ??
          "The upload did not go through (the server did not confirm it); nothing was saved. Reload the page and try again.",
        "error",
      );
    });
    xhr.addEventListener("error", () => {
      finish();
      say("The upload failed: the connection was lost. Nothing was saved; please try again.", "error");
    });
    form.setAttribute("aria-busy", "true");
    if (button) button.disabled = true;
    if (progress) {
      progress.value = 0;
      progress.hidden = false;
    }
    say("Uploading…");
    xhr.send(new FormData(form));
  });

  window.attest = { localizeTimes, csrf };
})();

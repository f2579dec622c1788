/* commsdesk demo page: short polling of server-rendered regions, and actions as JSON posts.
   No framework, no build step. Every region is HTML rendered (and escaped) by the server. */
(() => {
  "use strict";
  const S = { as: window.DEMO.as, ch: window.DEMO.ch, last: {}, inflight: false, again: false,
              opener: null, stickBottom: true };
  const $ = (sel, root = document) => root.querySelector(sel);
  const statusEl = $("#status");

  function say(text, bad) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("bad", !!bad);
  }

  async function post(path, body, quiet) {
    let data = { ok: false, message: "The demo server did not answer." };
    try {
      const resp = await fetch("/api/" + path, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ as: S.as }, body)),
      });
      data = await resp.json().catch(() => ({ ok: false, message: "No answer (" + resp.status + ")" }));
    } catch (e) { /* keep the default message */ }
    if (!quiet || !data.ok) say(data.message, !data.ok);
    refresh();
    return data;
  }

  // ---------------------------------------------------------------- live regions

  function keyOf(el) {
    if (el.id) return "#" + el.id;
    if (el.dataset && (el.dataset.act || el.dataset.go)) return JSON.stringify({ ...el.dataset });
    return null;
  }

  function snapshot(root) {
    const values = {};
    root.querySelectorAll("input, textarea, select").forEach((c) => {
      if (!c.id) return;
      if (c.type === "checkbox" || c.type === "radio") values[c.id] = c.checked;
      else if (c.multiple) values[c.id] = [...c.selectedOptions].map((o) => o.value);
      else values[c.id] = c.value;
    });
    const active = document.activeElement;
    const focus = active && root.contains(active) ? {
      key: keyOf(active), start: active.selectionStart, end: active.selectionEnd,
    } : null;
    return { values, focus };
  }

  function restore(root, snap) {
    Object.entries(snap.values).forEach(([id, v]) => {
      const c = document.getElementById(id);
      if (!c || !root.contains(c)) return;
      if (c.type === "checkbox" || c.type === "radio") c.checked = v;
      else if (c.multiple) [...c.options].forEach((o) => { o.selected = v.includes(o.value); });
      else c.value = v;
    });
    if (!snap.focus || !snap.focus.key) return;
    const target = [...root.querySelectorAll("[id], [data-act], [data-go]")]
      .find((el) => keyOf(el) === snap.focus.key);
    if (target) {
      target.focus({ preventScroll: true });
      if (snap.focus.start != null && target.setSelectionRange) {
        try { target.setSelectionRange(snap.focus.start, snap.focus.end); } catch (e) { /* n/a */ }
      }
    }
  }

  function swap(id, html) {
    if (S.last[id] === html) return false;
    const el = document.getElementById(id);
    if (!el) return false;
    const scroller = id === "sk-main" && S.ch !== "home" ? el : null;
    const nearBottom = scroller &&
      (S.stickBottom || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80);
    const hadModal = id === "sk-modal" && !!el.querySelector(".modal");
    const snap = snapshot(el);
    el.innerHTML = html;
    S.last[id] = html;
    restore(el, snap);
    if (nearBottom) { scroller.scrollTop = scroller.scrollHeight; S.stickBottom = false; }
    if (id === "sk-modal") modalChanged(el, hadModal);
    return true;
  }

  function modalChanged(el, hadModal) {
    const modal = el.querySelector(".modal");
    if (modal && !hadModal) {
      S.opener = S.opener || document.activeElement;
      const first = modal.querySelector("textarea, input, select, button[type=submit]");
      if (first) first.focus();
    } else if (!modal && hadModal) {
      const back = S.opener && document.body.contains(S.opener) ? S.opener : $("#compose-text");
      if (back && !back.hidden) back.focus();
      S.opener = null;
    }
  }

  function apply(d) {
    if (d.as !== S.as || d.ch !== S.ch) return refresh();
    $("#compose-label").textContent = d.ch === "home" ? "" : "Message " +
      (d.ch.startsWith("D") ? d.channel_label : "#" + d.channel_label);
    $("#composer").hidden = d.ch === "home";
    Object.entries(d.regions).forEach(([id, html]) => swap(id, html));
  }

  async function refresh() {
    if (S.inflight) { S.again = true; return; }
    S.inflight = true;
    try {
      const q = new URLSearchParams({ as: S.as, ch: S.ch });
      const resp = await fetch("/state?" + q, { cache: "no-store" });
      if (resp.ok) apply(await resp.json());
    } catch (e) { /* the next tick tries again */ }
    S.inflight = false;
    if (S.again) { S.again = false; refresh(); }
  }

  function go(channel) {
    S.ch = channel;
    S.stickBottom = channel !== "home";  // channels read bottom-up, Home top-down
    delete S.last["sk-main"];
    history.replaceState(null, "", "?" + new URLSearchParams({ as: S.as, ch: S.ch }));
    if (channel === "home") post("home", {}, true); else refresh();
    $("#sk-main").focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- actions

  document.addEventListener("click", (ev) => {
    const el = ev.target.closest("[data-act], [data-go]");
    if (!el) return;
    const d = el.dataset;
    if (d.go) return go(d.go);
    const value = d.value === undefined ? null : d.value;
    if (d.act === "click") {
      S.opener = el;
      post("click", { channel: d.channel, ts: d.ts, action_id: d.actionId, block_id: d.blockId, value });
    } else if (d.act === "view-click") {
      post("view-click", { view_id: d.viewId, action_id: d.actionId, block_id: d.blockId, value });
    } else if (d.act === "react") {
      post("react", { channel: d.channel, ts: d.ts, name: d.name });
    } else if (d.act === "close-view") {
      post("close", { view_id: d.viewId });
    }
  });

  // an overflow menu or a select in an actions block: the choice is the action's value
  document.addEventListener("change", (ev) => {
    const el = ev.target.closest("select[data-sel]");
    if (!el || !el.value) return;
    const d = el.dataset, value = el.value;
    el.value = "";
    if (d.sel === "click") {
      post("click", { channel: d.channel, ts: d.ts, action_id: d.actionId, block_id: d.blockId, value });
    } else {
      post("view-click", { view_id: d.viewId, action_id: d.actionId, block_id: d.blockId, value });
    }
  });

  function formValues(form) {
    const out = {};
    form.querySelectorAll("[data-kind]").forEach((c) => {
      const kind = c.dataset.kind, name = c.getAttribute("name");
      if (kind === "checkboxes") {
        out[name] = [...c.querySelectorAll("input:checked")].map((i) => i.value);
      } else if (kind === "radio_buttons") {
        const i = c.querySelector("input:checked"); out[name] = i ? i.value : null;
      } else if (kind === "multi_static_select") {
        out[name] = [...c.selectedOptions].map((o) => o.value);
      } else {
        out[name] = c.value === "" ? null : c.value;
      }
    });
    return out;
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    ev.preventDefault();
    if (form.id === "composer") {
      const input = $("#compose-text");
      const r = await post("compose", { channel: S.ch, text: input.value });
      if (r.ok) input.value = "";
    } else if (form.id === "mention-form") {
      const r = await post("mention", {
        account: form.account.value, handle: form.handle.value, text: form.text.value });
      if (r.ok) form.text.value = "";
    } else if (form.classList.contains("modal-form")) {
      post("submit", { view_id: form.dataset.viewId, values: formValues(form) });
    }
  });

  // inputs that ask for every keystroke (dispatch_action on_character_entered)
  const timers = {};
  document.addEventListener("input", (ev) => {
    const c = ev.target;
    if (!c.dataset || c.dataset.dispatch !== "1") return;
    clearTimeout(timers[c.id]);
    timers[c.id] = setTimeout(() => post("view-click", {
      view_id: c.dataset.viewId, action_id: c.name, block_id: c.dataset.blockId, value: c.value,
    }, true), 400);
  });

  document.addEventListener("keydown", (ev) => {
    const modal = $("#sk-modal .modal");
    if (!modal) return;
    if (ev.key === "Escape") {
      ev.preventDefault();
      post("close", { view_id: modal.dataset.viewId });
    } else if (ev.key === "Tab") { // keep focus inside the open modal
      const f = [...modal.querySelectorAll("button, input, select, textarea, a[href]")]
        .filter((el) => !el.disabled);
      if (!f.length) return;
      if (ev.shiftKey && document.activeElement === f[0]) { ev.preventDefault(); f[f.length - 1].focus(); }
      else if (!ev.shiftKey && document.activeElement === f[f.length - 1]) { ev.preventDefault(); f[0].focus(); }
    }
  });

  $("#as").addEventListener("change", (ev) => {
    const opt = ev.target.selectedOptions[0];
    S.as = opt.value;
    S.last = {};
    say("You are now " + opt.textContent.trim() + ".");
    go(opt.dataset.home);
  });

  // first paint came from the server; remember it, then poll
  ["sk-sidebar", "sk-main", "sk-modal", "public-posts", "audit"].forEach((id) => {
    const el = document.getElementById(id);
    if (el) S.last[id] = null;
  });
  const main = $("#sk-main");
  if (S.ch !== "home") main.scrollTop = main.scrollHeight;
  S.stickBottom = S.ch !== "home";
  if (S.ch === "home") post("home", {}, true);
  refresh();
  setInterval(refresh, window.DEMO.poll_ms || 1000);
})();

/*
 * Orchestra content slots for any website. No dependencies, no build step.
 *
 *   <div data-orchestra-slot="home-hero">The page's own content</div>
 *   <script src="https://orchestra.example.com/static/js/orchestra-personalize.js"></script>
 *   <script>
 *     OrchestraPersonalize.init({writeKey: "orc_…", endpoint: "https://orchestra.example.com",
 *                                contact: "user-42"});   // or anonymousId: "…"
 *   </script>
 *
 * Every element with data-orchestra-slot gets the slot's content for this visitor: the
 * content's html replaces the element's inside; otherwise its title, image and url go
 * into the children marked data-orchestra-title, data-orchestra-image (src) and
 * data-orchestra-url (href). A click on the element is reported (slot_clicked).
 * If Orchestra cannot answer (down, slow, unknown slot), the element keeps its own
 * content and nothing on the page breaks.
 */
(function (global) {
  "use strict";

  var UTM_KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"];
  var DEFAULT_TIMEOUT_MS = 2000;

  function trimSlash(url) {
    return String(url || "").replace(/\/+$/, "");
  }

  function pageContext() {
    var context = {page: global.location.pathname};
    if (global.document.referrer) context.referrer = global.document.referrer;
    var language = global.navigator && (global.navigator.language || "");
    if (language) context.language = language;
    try {
      var params = new URLSearchParams(global.location.search);
      UTM_KEYS.forEach(function (key) {
        if (params.get(key)) context[key] = params.get(key);
      });
    } catch (e) { /* an old browser: no UTM context */ }
    return context;
  }

  function query(values) {
    var parts = [];
    Object.keys(values).forEach(function (key) {
      var value = values[key];
      if (value !== undefined && value !== null && value !== "") {
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
      }
    });
    return parts.join("&");
  }

  function slotUrl(options, slot) {
    return trimSlash(options.endpoint) + "/api/v1/personalize/" + encodeURIComponent(slot) + "/";
  }

  function fetchDecision(options, slot) {
    if (typeof global.fetch !== "function") return Promise.reject(new Error("no fetch"));
    var params = Object.assign({}, pageContext(), options.context || {}, {
      writeKey: options.writeKey,
      contact: options.contact,
      anonymous_id: options.anonymousId,
    });
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller && setTimeout(function () { controller.abort(); },
                                         options.timeout || DEFAULT_TIMEOUT_MS);
    return global.fetch(slotUrl(options, slot) + "?" + query(params), {
      method: "GET",
      mode: "cors",
      credentials: "omit",
      signal: controller ? controller.signal : undefined,
    }).then(function (response) {
      if (timer) clearTimeout(timer);
      if (!response.ok) throw new Error("Orchestra answered " + response.status);
      return response.json();
    }, function (error) {
      if (timer) clearTimeout(timer);
      throw error;
    });
  }

  function fill(element, decision) {
    var content = decision.content || {};
    if (typeof content.html === "string" && content.html !== "") {
      element.innerHTML = content.html;
    } else {
      var title = element.querySelector("[data-orchestra-title]");
      if (title && content.title) title.textContent = content.title;
      var image = element.querySelector("[data-orchestra-image]");
      if (image && content.image) image.setAttribute("src", content.image);
      var link = element.matches && element.matches("a") ? element
        : element.querySelector("[data-orchestra-url]");
      if (link && content.url) link.setAttribute("href", content.url);
    }
    element.setAttribute("data-orchestra-variant", decision.variant || "");
    if (decision.impression_id) {
      element.setAttribute("data-orchestra-impression", decision.impression_id);
    } else {
      element.removeAttribute("data-orchestra-impression");
    }
    try {
      element.dispatchEvent(new CustomEvent("orchestra:personalized",
                                            {bubbles: true, detail: decision}));
    } catch (e) { /* no CustomEvent: nothing listens there anyway */ }
  }

  function reportClick(options, slot, impressionId) {
    // text/plain, the key in the body: a "simple" request, so no CORS preflight, and
    // sendBeacon survives the page unloading when the click follows a link.
    var body = JSON.stringify({writeKey: options.writeKey, impression_id: impressionId});
    var url = slotUrl(options, slot) + "click/";
    try {
      if (global.navigator && typeof global.navigator.sendBeacon === "function") {
        var blob = new Blob([body], {type: "text/plain"});
        if (global.navigator.sendBeacon(url, blob)) return;
      }
      if (typeof global.fetch === "function") {
        global.fetch(url, {method: "POST", mode: "cors", credentials: "omit", keepalive: true,
                           headers: {"Content-Type": "text/plain"}, body: body})
          .catch(function () {});
      }
    } catch (e) { /* a click report must never break the click */ }
  }

  var current = null;

  function listen(element) {
    if (element.__orchestraListening) return;
    element.__orchestraListening = true;
    element.addEventListener("click", function () {
      var impression = element.getAttribute("data-orchestra-impression");
      if (current && impression) {
        reportClick(current, element.getAttribute("data-orchestra-slot"), impression);
      }
    });
  }

  /**
   * Fill every slot element under options.root (default: the document). Answers a
   * promise of {slot: decision} for the slots Orchestra answered; it never rejects.
   */
  function init(options) {
    options = options || {};
    current = options;
    var root = options.root || global.document;
    var elements = Array.prototype.slice.call(root.querySelectorAll("[data-orchestra-slot]"));
    var bySlot = {};
    elements.forEach(function (element) {
      var slot = element.getAttribute("data-orchestra-slot");
      if (slot) (bySlot[slot] = bySlot[slot] || []).push(element);
    });
    var decisions = {};
    var requests = Object.keys(bySlot).map(function (slot) {
      return fetchDecision(options, slot).then(function (decision) {
        decisions[slot] = decision;
        bySlot[slot].forEach(function (element) {
          fill(element, decision);
          listen(element);
        });
      }, function (error) {
        if (options.debug && global.console) global.console.warn("Orchestra:", slot, error);
      });
    });
    return Promise.all(requests).then(function () { return decisions; });
  }

  global.OrchestraPersonalize = {init: init, version: "1"};
})(typeof window !== "undefined" ? window : this);

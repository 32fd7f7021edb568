// Web push from your own site to Orchestra, with no build step.
//
// Serve orchestra-push-sw.js from your site (its scope decides which pages may
// subscribe), then, after the visitor clicks something like "Notify me":
//
//   import { subscribe, unsubscribe } from "/static/js/orchestra-push.js";
//   await subscribe({
//     host: "https://orchestra.example.com",
//     key: "orc_…",                 // an API key with the ingest scope only
//     externalId: "u1",             // or email: "…", or anonymousId: "…"
//     serviceWorker: "/orchestra-push-sw.js",
//   });
//
// The browser's permission prompt is the visitor's opt-in: Orchestra records push
// consent as subscribed for a new subscription.

function keyBytes(base64url) {
  const base64 = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4))
    .replace(/-/g, "+")
    .replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

async function call(options, method, path, body) {
  const response = await fetch(options.host.replace(/\/$/, "") + path, {
    method,
    headers: { Authorization: `Bearer ${options.key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  // Deleting a subscription Orchestra no longer has is fine; anything else is not.
  if (!response.ok && !(method === "DELETE" && response.status === 404)) {
    throw new Error(`Orchestra answered ${response.status}`);
  }
  return response.ok && response.status !== 204 ? response.json() : null;
}

function who(options) {
  if (options.externalId) return { external_id: options.externalId };
  if (options.email) return { email: options.email };
  if (options.anonymousId) return { anonymous_id: options.anonymousId };
  throw new Error("Name the contact: externalId, email or anonymousId.");
}

export function isSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

export async function subscribe(options) {
  if (!isSupported()) return null;
  const registration = await navigator.serviceWorker.register(
    options.serviceWorker || "/orchestra-push-sw.js",
  );
  await navigator.serviceWorker.ready;
  if ((await Notification.requestPermission()) !== "granted") return null;
  const { public_key: publicKey } = await call(options, "GET", "/api/v1/push-subscriptions/vapid-key/");
  let subscription = await registration.pushManager.getSubscription();
  if (!subscription) {
    subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(publicKey),
    });
  }
  await call(options, "POST", "/api/v1/push-subscriptions/", {
    ...who(options),
    subscription: subscription.toJSON(),
  });
  return subscription;
}

export async function unsubscribe(options) {
  if (!isSupported()) return false;
  const registration = await navigator.serviceWorker.getRegistration(
    options.serviceWorker || "/orchestra-push-sw.js",
  );
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) return false;
  await call(options, "DELETE", "/api/v1/push-subscriptions/", { endpoint: subscription.endpoint });
  return subscription.unsubscribe();
}

// Boots the app. A file, not an inline script: the Content-Security-Policy
// (host/api/src/web.rs) allows scripts from this origin only.
import init from "/stratagem_web.js";
init({ module_or_path: "/stratagem_web_bg.wasm" });

// The wire protocols (both in the README): signalling v1 over /ws — the page says hello with what
// it decodes, the agent offers, the page answers, ICE trickles both ways — and the data channel
// "input", whose small JSON messages carry input, size, clipboard and cursor.

export const V = 1;

// Codecs a receiver lists that are not pictures of their own.
const NOT_A_CODEC = ["RTX", "RED", "ULPFEC", "FLEXFEC-03"];

// What this browser decodes, as SDP names (`H264`, `VP8`), from
// `RTCRtpReceiver.getCapabilities("video")`; a browser without that API is assumed to decode
// H.264 (every browser with WebRTC did before it existed).
export function decodableCodecs(capabilities) {
  const names = capabilities ? capabilities.codecs.map((c) => c.mimeType.split("/")[1].toUpperCase()) : ["H264"];
  return [...new Set(names)].filter((n) => !NOT_A_CODEC.includes(n));
}

export function helloMessage(codecs) {
  return { v: V, type: "hello", codecs };
}

// The signalling socket's URL for this page; the token binds it to the page as the agent served it.
export function socketUrl(location, token) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?token=" + encodeURIComponent(token);
}

// A WebSocket not open by then is retried at once (its SYN was lost).
export const OPEN_TIMEOUT_MS = 800;
// No new frame for this long while visible: the connection is dead.
export const STALL_MS = 2000;
// A new connection's first frame may take longer (TURN, a busy agent).
export const FIRST_FRAME_MS = 10000;
// ICE disconnected or failed this long: the path is gone.
export const ICE_DOWN_MS = 1000;

// How long to wait before the next attempt: at once after an open that timed out (the network is
// down, not the agent busy), else a little longer each time, at most a second.
export function retryDelay(attempt, timedOut) {
  return timedOut ? 0 : Math.min(1000, 250 * attempt);
}

// Whether a connection is dead: frames stopped, or ICE has said the path is gone for a while.
export function stalled({ now, lastFrameAt, playing, downSince }) {
  return now - lastFrameAt > (playing ? STALL_MS : FIRST_FRAME_MS) || (downSince > 0 && now - downSince > ICE_DOWN_MS);
}

// The statistics overlay (Ctrl+Alt+S): what the browser measures of the stream, and what the agent
// says of the path, once a second.

// Reads one `RTCPeerConnection.getStats()` report (a Map of stats by id) against the previous
// reading; returns the lines' values and the reading to pass next time.
export function readStats(stats, last) {
  let inbound = null, pair = null, audio = null;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
    if (s.type === "inbound-rtp" && s.kind === "audio") audio = s;
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  });
  if (!inbound) return null;
  const local = pair ? stats.get(pair.localCandidateId) : null;
  const now = inbound.timestamp;
  const per = (d) => (last && now > last.t ? d / (now - last.t) : null);
  const kbps = last ? per(8 * (inbound.bytesReceived - last.bytes)) : null;
  const fps = last ? per(1000 * (inbound.framesDecoded - last.frames)) : null;
  const rtt = pair && pair.currentRoundTripTime !== undefined ? pair.currentRoundTripTime * 1000 : null;
  const jitterBuffer = inbound.jitterBufferEmittedCount ? (1000 * inbound.jitterBufferDelay) / inbound.jitterBufferEmittedCount : 0;
  const decode = inbound.framesDecoded ? (1000 * inbound.totalDecodeTime) / inbound.framesDecoded : 0;
  // Glass to glass, roughly: half the round trip, the jitter buffer, decoding and one frame.
  const latency = rtt === null ? null : rtt / 2 + jitterBuffer + decode + 1000 / Math.max(1, fps || 60);
  return {
    values: { kbps, fps, rtt, jitterBuffer, decode, latency, route: local ? `${local.candidateType} ${local.protocol}` : null, audio: !!audio },
    last: { t: now, bytes: inbound.bytesReceived, frames: inbound.framesDecoded },
  };
}

const fixed = (v, digits) => (v === null || v === undefined ? "-" : v.toFixed(digits));

// The overlay's text. `target` is the agent's last "stats" message (or null).
export function render(v, { encoder, width, height, target, muted, pacing }) {
  const tgt = target
    ? `${target.target} kbit/s (path ≈ ${target.estimate} kbit/s${target.capacity ? `, frames cross at ${target.capacity}` : ""}, loss ${(100 * target.loss).toFixed(1)} %, picture ${target.quality})`
    : "-";
  const sound = v.audio ? `opus ${muted ? "muted" : "on"}` : "none";
  return [
    `encoder   ${encoder}`,
    `size      ${width}x${height}`,
    `fps       ${fixed(v.fps, 0)}`,
    `bitrate   ${fixed(v.kbps, 0)} kbit/s`,
    `target    ${tgt}`,
    `rtt       ${fixed(v.rtt, 1)} ms`,
    `jitterbuf ${fixed(v.jitterBuffer, 1)} ms`,
    `decode    ${fixed(v.decode, 1)} ms`,
    `latency ≈ ${fixed(v.latency, 0)} ms`,
    `route     ${v.route || "-"}`,
    `sound     ${sound}`,
    `pacing    ${pacing}`,
  ].join("\n");
}

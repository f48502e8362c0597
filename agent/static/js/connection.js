// One connection = one WebSocket and the peer connection it negotiates. A connection that stops
// delivering frames (network outage, ICE failure) is dropped and a fresh one made, without a page
// reload: handlers of an older connection do nothing once a newer one exists.

import { OPEN_TIMEOUT_MS, decodableCodecs, helloMessage, retryDelay, socketUrl, stalled, V } from "./protocol.js";

export class Connection {
  // `video`: the <video> element; `token`: the page token; `relay`: TURN only;
  // `on`: { status(text), channel(RTCDataChannel), dropped() }.
  constructor({ video, token, relay, on }) {
    Object.assign(this, { video, token, relay, on });
    this.gen = 0;
    this.pc = null;
    this.ws = null;
    this.retry = 0;
    this.encoder = "?";
    this.codec = null;
    this.lastFrameAt = 0;
    this.downSince = 0;
    this.playing = false;
  }

  start() {
    this.connect();
    setInterval(() => this.watch(), 250);
  }

  // A decoded frame was shown (the watchdog's heartbeat).
  frameSeen() {
    this.lastFrameAt = performance.now();
    this.playing = true;
  }

  send(obj) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(Object.assign({ v: V }, obj)));
  }

  connect() {
    const my = ++this.gen;
    const sock = new WebSocket(socketUrl(location, this.token));
    this.ws = sock;
    let timedOut = false;
    const openTimer = setTimeout(() => {
      if (sock.readyState === 0) {
        timedOut = true;
        sock.close();
      }
    }, OPEN_TIMEOUT_MS);
    // First, what this browser decodes: the agent picks the codec before it offers (Firefox
    // without its OpenH264 plugin has no H.264).
    sock.onopen = () => {
      clearTimeout(openTimer);
      const caps = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities ? RTCRtpReceiver.getCapabilities("video") : null;
      sock.send(JSON.stringify(helloMessage(decodableCodecs(caps))));
    };
    sock.onmessage = async (e) => {
      if (my !== this.gen) return;
      await this.message(JSON.parse(e.data));
    };
    sock.onclose = () => {
      clearTimeout(openTimer);
      if (my !== this.gen) return;
      this.drop();
      if (this.retry < 0) return; // told to stop (another viewer took over)
      this.on.status("reconnecting…");
      setTimeout(() => this.connect(), retryDelay(++this.retry, timedOut));
    };
  }

  async message(m) {
    if (m.type === "config") {
      this.encoder = `${m.encoder}${m.codec ? ` (${m.codec})` : ""}`;
      this.codec = m.codec || null;
      this.lastFrameAt = performance.now();
      this.downSince = 0;
      this.playing = false;
      const pc = new RTCPeerConnection({ iceServers: m.iceServers, iceTransportPolicy: this.relay ? "relay" : "all" });
      this.pc = pc;
      pc.ontrack = (ev) => {
        const video = this.video;
        if (!video.srcObject) video.srcObject = ev.streams[0] || new MediaStream();
        if (!video.srcObject.getTracks().includes(ev.track)) video.srcObject.addTrack(ev.track);
        video.play().catch(() => {});
      };
      pc.onicecandidate = (ev) => {
        if (ev.candidate) this.send({ type: "ice", candidate: ev.candidate.candidate, sdpMLineIndex: ev.candidate.sdpMLineIndex || 0 });
      };
      pc.ondatachannel = (ev) => {
        if (ev.channel.label === "input") this.on.channel(ev.channel);
      };
      pc.onconnectionstatechange = () => {
        if (this.pc === pc && pc.connectionState === "connected") {
          this.on.status("");
          this.retry = 0;
        }
      };
    } else if (m.type === "offer") {
      const pc = this.pc;
      await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      // Draw each frame as it is decoded (Chromium also honours the agent's playout-delay extension).
      for (const r of pc.getReceivers()) {
        try {
          r.playoutDelayHint = 0;
          r.jitterBufferTarget = 0;
        } catch (_) {}
      }
      this.send({ type: "answer", sdp: answer.sdp });
    } else if (m.type === "ice") {
      try {
        await this.pc.addIceCandidate({ candidate: m.candidate, sdpMLineIndex: m.sdpMLineIndex });
      } catch (err) {
        console.warn(err);
      }
    } else if (m.type === "bye") {
      this.on.status(m.reason);
      this.retry = -1;
    }
  }

  drop() {
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.video.srcObject = null;
    this.on.dropped();
  }

  // Watchdog: frames stopped (or ICE says the path is gone) while the page is visible: start
  // over on a fresh connection. The agent ends the old session when the new one takes over.
  watch() {
    const pc = this.pc;
    if (!pc || document.hidden || this.retry < 0) return;
    const now = performance.now(), ice = pc.connectionState;
    this.downSince = ice === "disconnected" || ice === "failed" ? this.downSince || now : 0;
    if (!stalled({ now, lastFrameAt: this.lastFrameAt, playing: this.playing, downSince: this.downSince })) return;
    console.info(`connection lost (ice ${ice}, last frame ${Math.round(now - this.lastFrameAt)} ms ago): reconnecting`);
    this.on.status("reconnecting…");
    const old = this.ws;
    this.gen++;
    this.drop();
    if (old) old.close();
    this.retry = 0;
    this.connect();
  }
}

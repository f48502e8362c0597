//! webrtcbin's statistics, read into what adaptation needs: the path's round-trip time and loss
//! from the viewer's receiver reports, packets sent and resent, and the selected candidate type.

use std::collections::HashMap;

/// What one `get-stats` reply says about the path to the viewer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PathReport {
    /// Round-trip time from the main stream's receiver report, in ms.
    pub rtt_ms: Option<f64>,
    /// The receiver's own fraction lost over its last report interval (0..1).
    pub fraction_lost: Option<f64>,
    /// Packets the receiver counts as lost on the main stream, cumulative.
    pub packets_lost: Option<i64>,
    /// Packets sent on the main video stream; `None` until the viewer sent a receiver report.
    pub sent: Option<u64>,
    /// Packets sent on every other video stream: retransmissions.
    pub resent: u64,
    /// Type of the local candidate in use (`host`, `srflx`, `relay`).
    pub candidate: Option<String>,
    /// What the viewer's transport-wide feedback says, once it sends some.
    pub twcc: Option<Twcc>,
}

/// rtpsession's reading of the viewer's transport-wide congestion control feedback over its last
/// window: what was sent, what arrived, and whether packets arrive ever later (a queue).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Twcc {
    /// Bitrate sent, kbit/s.
    pub sent_kbps: f64,
    /// Bitrate the viewer received, kbit/s.
    pub recv_kbps: f64,
    /// Mean growth of the gap between arrival and send intervals, ms: above zero a queue grows.
    pub delay_gradient_ms: f64,
    /// Packets lost, 0 to 1.
    pub loss: f64,
}

impl Twcc {
    /// Reads rtpsession's `twcc-stats` (webrtcbin's `gst-twcc-stats`).
    pub fn from_structure(s: &gst::StructureRef) -> Option<Self> {
        let uint = |k: &str| s.get::<u32>(k).map(f64::from).or_else(|_| s.get::<u64>(k).map(|v| v as f64)).ok();
        let sent = uint("bitrate-sent")?;
        let recv = uint("bitrate-recv")?;
        let dod = s.get::<i64>("avg-delta-of-delta").map(|ns| ns as f64 / 1e6).unwrap_or(0.0);
        let loss = s.get::<f64>("packet-loss-pct").map(|p| (p / 100.0).clamp(0.0, 1.0)).unwrap_or(0.0);
        // A window without packets says nothing.
        (sent > 0.0).then_some(Self {
            sent_kbps: sent / 1000.0,
            recv_kbps: recv / 1000.0,
            delay_gradient_ms: dod,
            loss,
        })
    }
}

impl PathReport {
    /// Reads a `get-stats` reply (a structure of one structure per stats object).
    pub fn from_stats(stats: &gst::StructureRef) -> Self {
        // Each sent stream (the video, its retransmissions) has its own receiver report; a stream
        // that stopped sending keeps its last, stale one. The report of the stream with the most
        // packets sent is the path's.
        let mut reports = Vec::new();
        let mut sent = HashMap::new();
        let mut video_streams = Vec::new();
        let mut candidates = HashMap::new();
        let mut selected = None;
        let mut last_local = None;
        let mut twcc = None;
        for (id, value) in stats.iter() {
            let Ok(s) = value.get::<gst::Structure>() else { continue };
            if let Ok(t) = s.get::<gst::Structure>("gst-twcc-stats") {
                twcc = Twcc::from_structure(&t).or(twcc);
            }
            match s.name().as_str() {
                "remote-inbound-rtp" => reports.push(Report {
                    local: s.get::<String>("local-id").ok(),
                    rtt_ms: s.get::<f64>("round-trip-time").ok().map(|r| r * 1000.0),
                    fraction: s.get::<f64>("fraction-lost").ok(),
                    lost: s.get::<i32>("packets-lost").map(i64::from).or_else(|_| s.get::<i64>("packets-lost")).ok(),
                }),
                "outbound-rtp" => {
                    let packets = s.get::<u64>("packets-sent").unwrap_or(0);
                    sent.insert(id.to_string(), packets);
                    if s.get::<&str>("kind").is_ok_and(|k| k == "video") {
                        video_streams.push((id.to_string(), packets));
                    }
                }
                "local-candidate" => {
                    if let Ok(v) = s.value("candidate-type") {
                        let t = v.get::<String>().unwrap_or_else(|_| format!("{v:?}")).to_lowercase();
                        candidates.insert(id.to_string(), t.clone());
                        last_local = Some(t);
                    }
                }
                "candidate-pair" => selected = s.get::<String>("local-candidate-id").ok().or(selected),
                _ => {}
            }
        }
        let sent_by = |r: &Report| r.local.as_ref().and_then(|l| sent.get(l)).copied();
        let main = reports.into_iter().max_by_key(|r| sent_by(r));
        let main_sent = main.as_ref().and_then(sent_by);
        let main_id = main.as_ref().and_then(|r| r.local.clone());
        // Every other video stream is the retransmission stream. (Whether a stream lists a
        // `remote-id` says nothing: the main stream sometimes has none, and all of it counted as
        // resent once, which cut a clean localhost path to 700 kbit/s.)
        let resent = video_streams.iter().filter(|(id, _)| Some(id) != main_id.as_ref()).map(|(_, p)| p).sum();
        // The selected pair's local candidate where webrtcbin reports pairs, else the only one.
        let candidate = selected.and_then(|id| candidates.remove(&id)).or(last_local);
        let main = main.unwrap_or_default();
        Self {
            rtt_ms: main.rtt_ms,
            fraction_lost: main.fraction,
            packets_lost: main.lost,
            sent: main_sent,
            resent,
            candidate,
            twcc,
        }
    }
}

#[derive(Default)]
struct Report {
    local: Option<String>,
    rtt_ms: Option<f64>,
    fraction: Option<f64>,
    lost: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::PathReport;

    fn outbound(id: &str, packets: u64, remote: Option<&str>) -> (String, gst::Structure) {
        gst::init().expect("GStreamer initialises");
        let mut b = gst::Structure::builder("outbound-rtp").field("kind", "video").field("packets-sent", packets);
        if let Some(r) = remote {
            b = b.field("remote-id", r);
        }
        (id.into(), b.build())
    }

    fn report(id: &str, local: &str, rtt_s: f64, fraction: f64, lost: i32) -> (String, gst::Structure) {
        gst::init().expect("GStreamer initialises");
        let s = gst::Structure::builder("remote-inbound-rtp")
            .field("local-id", local)
            .field("round-trip-time", rtt_s)
            .field("fraction-lost", fraction)
            .field("packets-lost", lost)
            .build();
        (id.into(), s)
    }

    fn candidate(id: &str, kind: &str) -> (String, gst::Structure) {
        gst::init().expect("GStreamer initialises");
        (id.into(), gst::Structure::builder("local-candidate").field("candidate-type", kind).build())
    }

    /// The shape webrtcbin 1.22 replies in: one field per stats object, named by its id.
    fn stats(objects: Vec<(String, gst::Structure)>) -> gst::Structure {
        gst::init().expect("GStreamer initialises");
        let mut b = gst::Structure::builder("application/x-webrtc-stats");
        for (id, s) in objects {
            b = b.field(id, s);
        }
        b.build()
    }

    #[test]
    fn the_main_stream_and_its_retransmissions_are_told_apart() {
        let s = stats(vec![
            outbound("out-video", 9000, Some("in-video")),
            outbound("out-rtx", 40, Some("in-rtx")),
            report("in-video", "out-video", 0.012, 0.01, 30),
            report("in-rtx", "out-rtx", 0.5, 0.0, 0),
            candidate("local-1", "host"),
        ]);
        let r = PathReport::from_stats(&s);
        assert_eq!(r.sent, Some(9000));
        assert_eq!(r.resent, 40);
        assert_eq!(r.packets_lost, Some(30));
        assert_eq!(r.fraction_lost, Some(0.01));
        assert!(r.rtt_ms.is_some_and(|ms| (ms - 12.0).abs() < 1e-9));
        assert_eq!(r.candidate.as_deref(), Some("host"));
    }

    /// The main stream without a `remote-id` once counted as all resent, and the controller cut
    /// a clean localhost path to 700 kbit/s.
    #[test]
    fn a_main_stream_without_remote_id_is_not_counted_as_resent() {
        let s = stats(vec![
            outbound("out-video", 12_000, None),
            outbound("out-rtx", 0, Some("in-rtx")),
            report("in-video", "out-video", 0.001, 0.0, 0),
        ]);
        let r = PathReport::from_stats(&s);
        assert_eq!((r.sent, r.resent), (Some(12_000), 0));
    }

    /// A stream that stopped sending keeps its last report; the busiest stream's report wins.
    #[test]
    fn a_stale_report_of_a_quiet_stream_is_not_the_paths() {
        let s = stats(vec![
            outbound("out-old", 300, Some("in-old")),
            outbound("out-video", 5000, Some("in-video")),
            report("in-old", "out-old", 0.9, 0.5, 150),
            report("in-video", "out-video", 0.02, 0.0, 0),
        ]);
        let r = PathReport::from_stats(&s);
        assert_eq!(r.sent, Some(5000));
        assert_eq!(r.fraction_lost, Some(0.0));
    }

    /// The shape webrtcbin 1.22 puts the transport-wide feedback in: a field of the transport's
    /// (or the candidate pair's) stats.
    #[test]
    fn transport_wide_feedback_is_read_in_kbit_and_ms() {
        gst::init().expect("GStreamer initialises");
        let twcc = gst::Structure::builder("RTPTWCCStats")
            .field("bitrate-sent", 6_200_000u32)
            .field("bitrate-recv", 5_100_000u32)
            .field("packets-sent", 600u32)
            .field("packets-recv", 590u32)
            .field("packet-loss-pct", 1.5f64)
            .field("avg-delta-of-delta", 2_500_000i64)
            .build();
        let transport = gst::Structure::builder("transport").field("gst-twcc-stats", twcc).build();
        let r = PathReport::from_stats(&stats(vec![("transport".into(), transport), outbound("out-video", 10, None)]));
        let t = r.twcc.expect("the feedback is read");
        assert_eq!((t.sent_kbps, t.recv_kbps), (6200.0, 5100.0));
        assert!((t.delay_gradient_ms - 2.5).abs() < 1e-9 && (t.loss - 0.015).abs() < 1e-9, "{t:?}");
        // No feedback: no reading (a browser that did not answer the extension).
        assert_eq!(PathReport::from_stats(&stats(vec![outbound("out-video", 10, None)])).twcc, None);
    }

    #[test]
    fn before_any_receiver_report_nothing_is_known_of_the_path() {
        let r = PathReport::from_stats(&stats(vec![outbound("out-video", 100, None)]));
        assert_eq!(r.sent, None);
        assert_eq!(r.rtt_ms, None);
    }

    #[test]
    fn the_selected_pairs_candidate_is_the_one_in_use() {
        gst::init().expect("GStreamer initialises");
        let pair = gst::Structure::builder("candidate-pair").field("local-candidate-id", "local-2").build();
        let s = stats(vec![candidate("local-1", "host"), candidate("local-2", "RELAY"), ("pair".into(), pair)]);
        assert_eq!(PathReport::from_stats(&s).candidate.as_deref(), Some("relay"));
    }
}

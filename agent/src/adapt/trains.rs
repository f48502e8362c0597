//! The path's capacity, read from how each frame's packets arrive. The packet pacer lets a frame
//! that fits the target go out at once, so its packets leave within a fraction of a millisecond
//! and reach the viewer as fast as the narrowest link passes them: a frame of 12 kB takes 16 ms
//! through 6 Mbit/s and 5 through 20. The viewer's transport-wide feedback gives each packet's
//! arrival time (rtpsession passes it upstream as an `RTPTWCCPackets` event), so every frame is
//! a measurement of the path's capacity, also where the stream sends well under it: the one
//! signal that says a narrowed path has widened without sending into it (delay and loss say so
//! only once the stream has grown past the old limit, which took x264, filling 60–75 % of its
//! setting there, 4–5 s; docs/bitrate-history.md).
//!
//! A train is a run of received packets each sent within [`SAME_BURST`] of the one before;
//! its rate is the bytes after its first packet over the time from the first arrival to the
//! last (the first packet's own time on the link is not in that span). Trains shorter than
//! [`MIN_PACKETS`] or [`MIN_SPAN`] say too little at the feedback's 250 µs resolution. The
//! interval's capacity is the median of its trains' rates.

use std::time::Duration;

/// Packets sent this close together belong to one burst.
pub const SAME_BURST: Duration = Duration::from_micros(500);
/// The fewest packets that make a train.
pub const MIN_PACKETS: usize = 5;
/// The shortest arrival span read as a rate (four ticks of the feedback's 250 µs clock).
pub const MIN_SPAN: Duration = Duration::from_millis(1);
/// The fewest trains whose median is a reading.
pub const MIN_TRAINS: usize = 5;

/// One packet of the viewer's transport-wide feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// When it was sent, ns (the agent's clock).
    pub sent_ns: u64,
    /// When it arrived, ns (the viewer's clock); `None` when lost.
    pub arrived_ns: Option<u64>,
    /// Bytes.
    pub size: u32,
}

impl Packet {
    /// Reads one `RTPTWCCPacket` structure of rtpsession's event.
    pub fn from_structure(s: &gst::StructureRef) -> Option<Self> {
        let sent_ns = s.get::<u64>("local-ts").ok().filter(|t| *t != u64::MAX)?;
        let lost = s.get::<bool>("lost").unwrap_or(true);
        let arrived_ns = s.get::<u64>("remote-ts").ok().filter(|t| !lost && *t != u64::MAX);
        Some(Self { sent_ns, arrived_ns, size: s.get::<u32>("size").ok()? })
    }
}

/// The rates (kbit/s) of the trains in one feedback message's packets, in sending order.
pub fn train_rates(packets: &[Packet]) -> Vec<f64> {
    let mut rates = Vec::new();
    let mut train: Vec<(u64, u32)> = Vec::new();
    let mut last_sent: Option<u64> = None;
    let mut flush = |train: &mut Vec<(u64, u32)>| {
        if train.len() >= MIN_PACKETS {
            let span = train.iter().map(|p| p.0).max().unwrap_or(0) - train.iter().map(|p| p.0).min().unwrap_or(0);
            if span >= MIN_SPAN.as_nanos() as u64 {
                let bytes: u64 = train.iter().skip(1).map(|p| u64::from(p.1)).sum();
                rates.push(bytes as f64 * 8.0 / span as f64 * 1e6);
            }
        }
        train.clear();
    };
    for p in packets {
        let together = last_sent.is_some_and(|s| p.sent_ns.abs_diff(s) <= SAME_BURST.as_nanos() as u64);
        last_sent = Some(p.sent_ns);
        match p.arrived_ns {
            // A loss inside a burst leaves a hole in its span: the train ends there.
            None => flush(&mut train),
            Some(at) => {
                if !together {
                    flush(&mut train);
                }
                train.push((at, p.size));
            }
        }
    }
    flush(&mut train);
    rates
}

/// Trains gathered between two decisions, and the last reading (one viewer's: each has its own).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Capacity {
    rates: Vec<f64>,
    last: Option<f64>,
}

impl Capacity {
    /// Adds one feedback message's packets.
    pub fn add(&mut self, packets: &[Packet]) {
        self.rates.extend(train_rates(packets));
    }

    /// The median train rate since the last call (kbit/s), when enough trains arrived; starts
    /// over.
    pub fn take(&mut self) -> Option<f64> {
        let mut rates = std::mem::take(&mut self.rates);
        if rates.len() < MIN_TRAINS {
            return None;
        }
        rates.sort_by(f64::total_cmp);
        self.last = Some(rates[rates.len() / 2]);
        self.last
    }

    /// The last reading `take` returned, if any (what the viewer's overlay shows).
    pub fn last(&self) -> Option<f64> {
        self.last
    }
}

/// Gathers the trains of every `RTPTWCCPackets` event that passes `pad` on its way upstream (the
/// pacer's source pad: rtpsession sends the event towards the payloader).
pub fn attach(pad: &gst::Pad, capacity: std::sync::Arc<std::sync::Mutex<Capacity>>) {
    use gst::prelude::*;
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(ev)) = &info.data else { return gst::PadProbeReturn::Ok };
        let Some(s) = ev.structure().filter(|s| s.name() == "RTPTWCCPackets") else { return gst::PadProbeReturn::Ok };
        let Ok(list) = s.get::<gst::glib::ValueArray>("packets") else { return gst::PadProbeReturn::Ok };
        let packets: Vec<Packet> = list
            .iter()
            .filter_map(|v| v.get::<gst::Structure>().ok())
            .filter_map(|p| Packet::from_structure(&p))
            .collect();
        if let Ok(mut c) = capacity.lock() {
            c.add(&packets);
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `n` packets of 1200 bytes sent at `at_ms` through a link of `kbps` whose queue
    /// was empty, arriving 20 ms later.
    fn frame(at_ms: u64, n: usize, kbps: f64) -> Vec<Packet> {
        let per_packet_ns = (1200.0 * 8.0 / kbps * 1e6) as u64;
        (0..n as u64)
            .map(|i| Packet {
                sent_ns: at_ms * 1_000_000 + i * 10_000,
                arrived_ns: Some(at_ms * 1_000_000 + 20_000_000 + (i + 1) * per_packet_ns),
                size: 1200,
            })
            .collect()
    }

    #[test]
    fn each_frame_measures_the_link_it_crossed() {
        for kbps in [6000.0, 20_000.0] {
            let packets: Vec<Packet> = (0..6).flat_map(|f| frame(f * 16, 10, kbps)).collect();
            let rates = train_rates(&packets);
            assert_eq!(rates.len(), 6);
            assert!(rates.iter().all(|r| (r - kbps).abs() < kbps * 0.01), "{kbps}: {rates:?}");
        }
    }

    #[test]
    fn short_frames_and_frames_cut_by_a_loss_say_nothing() {
        assert!(train_rates(&frame(0, MIN_PACKETS - 1, 6000.0)).is_empty());
        let mut lossy = frame(0, 8, 6000.0);
        lossy[3].arrived_ns = None;
        assert_eq!(train_rates(&lossy).len(), 0, "3 and 4 packets either side of the loss");
        lossy.extend(frame(16, 8, 6000.0));
        assert_eq!(train_rates(&lossy).len(), 1);
        // Packets that went out one at a time (paced) are no train.
        let paced: Vec<Packet> = (0..20).flat_map(|f| frame(f * 2, 1, 6000.0)).collect();
        assert!(train_rates(&paced).is_empty());
    }

    proptest::proptest! {
        /// The viewer writes the arrival times: whatever it reports (here for packets sent within
        /// 5 ms, so that many form trains), each rate is a finite positive number and nothing
        /// panics.
        #[test]
        fn any_feedback_gives_finite_rates(
            packets in proptest::collection::vec(
                (0u64..5_000_000, proptest::option::of(proptest::num::u64::ANY), 0u32..70_000),
                0..200,
            )
        ) {
            let packets: Vec<Packet> =
                packets.into_iter().map(|(sent_ns, arrived_ns, size)| Packet { sent_ns, arrived_ns, size }).collect();
            let rates = train_rates(&packets);
            proptest::prop_assert!(rates.iter().all(|r| r.is_finite() && *r >= 0.0), "{rates:?}");
            let mut c = Capacity::default();
            c.add(&packets);
            proptest::prop_assert!(c.take().is_none_or(f64::is_finite));
        }
    }

    #[test]
    fn the_interval_reads_the_median_of_its_trains() {
        let mut c = Capacity::default();
        c.add(&(0..4).flat_map(|f| frame(f * 16, 10, 6000.0)).collect::<Vec<_>>());
        assert_eq!(c.take(), None, "four trains are too few");
        assert_eq!(c.take(), None, "and are not carried over");
        assert_eq!(c.last(), None);
        let mut packets: Vec<Packet> = (0..6).flat_map(|f| frame(f * 16, 10, 20_000.0)).collect();
        packets.extend(frame(200, 10, 500_000.0)); // one burst that found a free path
        c.add(&packets);
        let reading = c.take().expect("seven trains");
        assert!((reading - 20_000.0).abs() < 200.0, "{reading}");
        assert_eq!(c.take(), None);
        assert_eq!(c.last(), Some(reading), "the overlay keeps the last reading");
    }
}

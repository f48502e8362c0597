//! A single-threaded tokio runtime per core, with connections dealt to them round robin: a
//! connection's requests then never hop between threads. On this 2-core machine tokio's
//! work-stealing runtime spent more CPU on cross-thread wake-ups than on the admission decision
//! itself (scripts/bench-webhook, perf: futex and IPI wake-ups, 2 workers vs 1 at the same load).

use std::{future::Future, sync::atomic::AtomicUsize, sync::atomic::Ordering, thread::JoinHandle};

use tokio::{runtime::Handle, sync::watch};

/// The worker runtimes. Dropping the pool stops them; tasks still running are cancelled.
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` worker threads (at least one), each running its own runtime.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let mut stopped = stopped.clone();
            threads.push(std::thread::Builder::new().name(format!("vdi-webhook-{i}")).spawn(move || {
                // Spawned tasks run while this thread is inside block_on.
                runtime.block_on(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                });
            })?);
        }
        Ok(Self { handles, threads, stop, next: AtomicUsize::new(0) })
    }

    /// Number of worker runtimes.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one worker.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `task` on the next worker in turn.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        drop(self.handles[i].spawn(task));
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deals_tasks_to_every_worker_thread() {
        let workers = Workers::start(3).expect("start");
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..6 {
            let tx = tx.clone();
            workers.spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
        }
        let mut names: Vec<_> = (0..6).map(|_| rx.recv().expect("ran").expect("named")).collect();
        names.sort();
        names.dedup();
        assert_eq!(names, ["vdi-webhook-0", "vdi-webhook-1", "vdi-webhook-2"]);
        drop(workers); // Joins the threads.
    }
}

//! The in-process work queue: an unbounded channel shared by the local workers, with the same
//! contract as the SQS queue (a message is handled by one worker; a crashed worker's task is
//! picked up again by the sweep once its lease expires).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};

use super::{QueueError, WorkMessage, WorkQueue};

/// A queue inside one process.
#[derive(Clone)]
pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<WorkMessage>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<WorkMessage>>>,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessQueue {
    /// An empty queue.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
        }
    }

    /// Waits for the next message; one receiver at a time takes it.
    pub async fn recv(&self) -> Option<WorkMessage> {
        self.rx.lock().await.recv().await
    }
}

#[async_trait]
impl WorkQueue for InProcessQueue {
    async fn send(&self, message: WorkMessage) -> Result<(), QueueError> {
        self.tx
            .send(message)
            .map_err(|_| QueueError("the local work queue is closed".into()))
    }
}

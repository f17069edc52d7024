use super::*;
use crate::manifest::{ManifestBuilder, NodeSpec};
use crate::shm::Region;

struct Fencer(bool);

impl Fence for Fencer {
    fn fence(&mut self, _: &NodeInfo, _: u64) -> bool {
        self.0
    }
}

fn two_nodes() -> Manifest {
    let nodes = [NodeSpec { id: 1, name: "a" }, NodeSpec { id: 2, name: "b" }];
    let b = ManifestBuilder::new(&nodes, &[], &[]).section_align(128);
    let region = Region::new_heap(b.required_size().unwrap());
    b.write(&region, 1).unwrap()
}

#[test]
fn death_is_declared_after_the_timeout_in_the_observers_time() {
    let m = two_nodes();
    let mut dog = Watchdog::new(&m, 2, 100, 0).unwrap();
    assert_eq!(dog.observe(500), Ok(PeerStatus::NotBooted));
    let mut b = LocalNode::boot(&m, 2).unwrap();
    assert_eq!(b.epoch(), 1);
    assert_eq!(dog.observe(1000), Ok(PeerStatus::Alive { epoch: 1 }));
    b.beat().unwrap();
    assert_eq!(dog.observe(1099), Ok(PeerStatus::Alive { epoch: 1 }));
    // 99 units after the last change: alive; 100: dead.
    assert_eq!(dog.observe(1198), Ok(PeerStatus::Alive { epoch: 1 }));
    assert_eq!(dog.observe(1199), Ok(PeerStatus::Dead { epoch: 1 }));
    // A late beat does not revive a declared death.
    b.beat().unwrap();
    assert_eq!(dog.observe(1200), Ok(PeerStatus::Dead { epoch: 1 }));
    assert!(!dog.is_gone(1));
    assert_eq!(dog.fence(&mut Fencer(false)), PeerStatus::Dead { epoch: 1 });
    assert_eq!(
        dog.fence(&mut Fencer(true)),
        PeerStatus::Fenced { epoch: 1 }
    );
    assert!(dog.is_gone(1) && !dog.is_gone(2));
    // The node reboots: a new epoch.
    let b2 = LocalNode::boot(&m, 2).unwrap();
    assert_eq!(b2.epoch(), 2);
    assert_eq!(
        dog.observe(1300),
        Ok(PeerStatus::Restarted { old: 1, new: 2 })
    );
    assert_eq!(dog.observe(1301), Ok(PeerStatus::Alive { epoch: 2 }));
    b2.stop().unwrap();
    assert_eq!(dog.observe(5000), Ok(PeerStatus::Stopped { epoch: 2 }));
}

#[test]
fn a_restart_between_observations_is_seen_and_old_epochs_are_gone() {
    let m = two_nodes();
    let _ = LocalNode::boot(&m, 1).unwrap();
    let mut dog = Watchdog::new(&m, 1, 10, 0).unwrap();
    assert_eq!(dog.observe(1), Ok(PeerStatus::Alive { epoch: 1 }));
    let _ = LocalNode::boot(&m, 1).unwrap();
    let _ = LocalNode::boot(&m, 1).unwrap();
    assert_eq!(dog.observe(2), Ok(PeerStatus::Restarted { old: 1, new: 3 }));
    assert!(dog.is_gone(1) && dog.is_gone(2) && !dog.is_gone(3) && !dog.is_gone(0));
}

#[test]
fn garbage_liveness_words_are_errors() {
    let m = two_nodes();
    let node = m.find_node(2).unwrap();
    let w = NodeWords::of(&node);
    let r = m.region();
    let mut dog = Watchdog::new(&m, 2, 10, 0).unwrap();
    let _ = LocalNode::boot(&m, 2).unwrap();
    r.store(w.epoch, 5, Ordering::Relaxed).unwrap();
    assert_eq!(dog.observe(1), Ok(PeerStatus::Alive { epoch: 5 }));
    r.store(w.epoch, 4, Ordering::Relaxed).unwrap();
    assert_eq!(
        dog.observe(2),
        Err(LifecycleError::BadEpoch {
            found: 4,
            expected: 5
        })
    );
    r.store(w.epoch, 5, Ordering::Relaxed).unwrap();
    r.store(w.state, 0xdead, Ordering::Relaxed).unwrap();
    assert_eq!(
        dog.observe(3),
        Err(LifecycleError::BadState { found: 0xdead })
    );
    r.store(w.epoch, u64::MAX, Ordering::Relaxed).unwrap();
    assert!(matches!(
        LocalNode::boot(&m, 2),
        Err(LifecycleError::BadEpoch { .. })
    ));
    assert!(matches!(
        Watchdog::new(&m, 9, 1, 0),
        Err(LifecycleError::Manifest(_))
    ));
}

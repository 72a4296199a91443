fn main() {
    vitals::gauge!("queue_depth", "queue").set(1.0);
}

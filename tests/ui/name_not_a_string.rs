fn main() {
    vitals::counter!(7).inc();
}

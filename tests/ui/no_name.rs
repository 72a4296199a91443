fn main() {
    vitals::counter!().inc();
}

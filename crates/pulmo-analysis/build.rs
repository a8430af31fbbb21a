fn main() {
    pulmo_build::link_libtorch();
}

// INCRBYFLOAT must print exactly what redis-server prints, and Redis computes it in C `long double`
// (x87 80-bit on x86_64) formatted with "%.17Lf". Rust has no long double, and f64 gives different
// digits (0.1 + 0.2), so this small C file does the arithmetic and formatting the way Redis does.
fn main() {
    println!("cargo:rerun-if-changed=csrc/longdouble.c");
    cc::Build::new()
        .file("csrc/longdouble.c")
        .compile("forkdb_longdouble");
}

// A Rust release build: no frame pointers, unwind tables from LLVM. main is
// reached from C's main through std's lang_start, so a full stack shows
// rust_leaf, rust_inner, rust_outer, rust_chain::main and, further down,
// the C-level main.
use std::hint::black_box;

#[inline(never)]
fn rust_leaf(mut x: u64) -> u64 {
    for _ in 0..200_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x ^= x >> 29;
    }
    black_box(x)
}

#[inline(never)]
fn rust_inner(x: u64) -> u64 {
    let r = rust_leaf(black_box(x));
    black_box(r.wrapping_add(x.wrapping_mul(3)))
}

#[inline(never)]
fn rust_outer(x: u64) -> u64 {
    let scratch = black_box([x; 8]);
    let r = rust_inner(black_box(x ^ scratch[(x & 7) as usize]));
    black_box(r ^ scratch[((x >> 3) & 7) as usize])
}

#[inline(never)]
fn main() {
    let mut i: u64 = 0;
    loop {
        black_box(rust_outer(black_box(i)));
        i = i.wrapping_add(1);
    }
}

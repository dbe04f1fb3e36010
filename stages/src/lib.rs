//! The proving passes as pipelines of stages (execute, tracegen, LDE, commit, aux, quotient, DEEP,
//! FRI, open). Each stage consumes and produces chunk descriptors; the pass plans wire them
//! together in canonical transcript order.

//! This package only holds examples of embedding pushgate in another program;
//! the library itself is empty. Each example says how to run it on its first
//! line, and CI compiles all of them so they do not rot.

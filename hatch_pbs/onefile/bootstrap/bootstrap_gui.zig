pub const hpbs_gui = true;
pub const main = @import("bootstrap.zig").main;

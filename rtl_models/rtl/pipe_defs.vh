// pipe_defs.vh: the PHV of the pipe target (docs/pipeline.md section 4) as one flat vector,
// and the PHV index space (operands name fields by a 6-bit index).
//
// Included inside the body of a module that declares the parameters NUM_CONTAINERS,
// PREDICATE_BITS, WINDOW_BYTES and WINDOW_HEADROOM. The offsets are generated from
// rtl_models/tbkit/phv.py (FIELDS), which the testbenches pack and unpack with.
//
// Layout, least significant bit first:
//   containers     NUM_CONTAINERS x 64   container c at [64c+63:64c]
//   predicates     PREDICATE_BITS        bit p = P[p]
//   verdict        32
//   redirect       32
//   punt_reason    32
//   fault          1
//   pkt_len        16                    original length, bytes
//   ingress        32                    ingress_ifindex
//   rx_queue       32
//   head           POS_BITS, signed      h (section 3)
//   end            POS_BITS, signed      e
//   zero_from      POS_BITS, signed      first position the payload FIFO no longer supplies
//   pass           8                     current pass (section 6)
//   admit_cycle    64                    cycle of the first entry into stage 0
//   window         (H + W) x 8           WIN[i] at [8i+7:8i]; WIN[H + p] holds position p
// BEGIN generated from rtl_models/tbkit/phv.py (python -m rtl_models.tbkit.phv)
localparam POS_BITS = 18;  // signed positions: the spec's 16 bits plus room for 64 KiB frames
localparam WIN_BYTES = WINDOW_HEADROOM + WINDOW_BYTES;
localparam WIN_BITS = 8 * WIN_BYTES;
localparam PHV_CONT = 0;
localparam PHV_PRED = PHV_CONT + 64 * NUM_CONTAINERS;
localparam PHV_VERDICT = PHV_PRED + PREDICATE_BITS;
localparam PHV_REDIRECT = PHV_VERDICT + 32;
localparam PHV_PUNT = PHV_REDIRECT + 32;
localparam PHV_FAULT = PHV_PUNT + 32;
localparam PHV_PKT_LEN = PHV_FAULT + 1;
localparam PHV_INGRESS = PHV_PKT_LEN + 16;
localparam PHV_QUEUE = PHV_INGRESS + 32;
localparam PHV_HEAD = PHV_QUEUE + 32;
localparam PHV_END = PHV_HEAD + POS_BITS;
localparam PHV_ZERO_FROM = PHV_END + POS_BITS;
localparam PHV_PASS = PHV_ZERO_FROM + POS_BITS;
localparam PHV_ADMIT = PHV_PASS + 8;
localparam PHV_WIN = PHV_ADMIT + 64;
localparam PHV_BITS = PHV_WIN + WIN_BITS;
// END generated
localparam RD_BITS = 64 * 64;  // the read bus: the 64 index-space values, index i at [64i+63:64i]

// The read bus of a PHV: every index of the index space (section 4) as a 64-bit value.
// Invalid indices (NUM_CONTAINERS..47, 58..63) read 0.
function [RD_BITS-1:0] phv_read_bus;
    input [PHV_BITS-1:0] phv;
    reg signed [POS_BITS-1:0] h, e;
    reg [15:0] len;
    reg signed [POS_BITS:0] tail, dlen;
    begin
        h = phv[PHV_HEAD +: POS_BITS];
        e = phv[PHV_END +: POS_BITS];
        len = phv[PHV_PKT_LEN +: 16];
        tail = e - $signed({1'b0, len});
        dlen = e - h;
        phv_read_bus = {RD_BITS{1'b0}};
        phv_read_bus[64 * NUM_CONTAINERS - 1:0] = phv[PHV_CONT +: 64 * NUM_CONTAINERS];
        phv_read_bus[64 * 48 +: 64] = {48'd0, len};
        phv_read_bus[64 * 49 +: 64] = {32'd0, phv[PHV_INGRESS +: 32]};
        phv_read_bus[64 * 50 +: 64] = {32'd0, phv[PHV_QUEUE +: 32]};
        phv_read_bus[64 * 51 +: 64] = {32'd0, phv[PHV_VERDICT +: 32]};
        phv_read_bus[64 * 52 +: 64] = {32'd0, phv[PHV_REDIRECT +: 32]};
        phv_read_bus[64 * 53 +: 64] = {32'd0, phv[PHV_PUNT +: 32]};
        phv_read_bus[64 * 54 +: 64] = {{(64 - POS_BITS){h[POS_BITS-1]}}, h};
        phv_read_bus[64 * 55 +: 64] = {{(63 - POS_BITS){tail[POS_BITS]}}, tail};
        phv_read_bus[64 * 56 +: 64] = {{(63 - POS_BITS){dlen[POS_BITS]}}, dlen};
        phv_read_bus[64 * 57 +: 64] = {63'd0, phv[PHV_FAULT]};
    end
endfunction

`default_nettype none
// pipe_extbuf: an extern's input buffer (docs/pipeline.md 5.7), combinational.
//
//   window      `length` bytes at packet offset `offset`: window index i = H + head + offset,
//               read like a window load and faulting like one (0 <= i, i + length <= H + W)
//   containers  the little-endian bytes of C[container], C[container + 1], ... truncated to
//               `length`
//   none        no buffer (as a length of 0)
// out_bytes holds the buffer zero-padded to 64 bytes; out_present: kind != none and
// length > 0 (bpf_csum_diff tests a buffer by its size).
module pipe_extbuf #(
    parameter NUM_CONTAINERS = 32,   // PHV containers (the PHV layout, pipe_defs.vh)
    parameter PREDICATE_BITS = 64,   // predicate bits (the PHV layout)
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64   // H
) (
    input  wire [1:0]          kind,       // 0 none, 1 window, 2 containers
    input  wire [15:0]         offset,     // window offset
    input  wire [5:0]          container,  // first container
    input  wire [6:0]          length,     // bytes, 0..64
    input  wire [POS_BITS-1:0] head,       // h (signed)
    input  wire [WIN_BITS-1:0] win,
    input  wire [64*64-1:0]    rd,         // read bus (containers at index 0..)
    output reg  [511:0]        out_bytes,
    output reg                 out_present,
    output reg                 out_fault
);
`include "pipe_defs.vh"

    reg signed [31:0] idx;
    reg [511:0] lmask;
    reg [64*64+511:0] padded;

    always @* begin
        idx = $signed({{(32 - POS_BITS){head[POS_BITS-1]}}, head}) + $signed({16'd0, offset})
            + WINDOW_HEADROOM;
        lmask = ~({512{1'b1}} << (8 * length));
        padded = {512'd0, rd};
        out_fault = 1'b0;
        out_bytes = 0;
        case (kind)
            2'd1: begin
                if (idx >= 0 && idx + length <= WIN_BYTES)
                    out_bytes = (win >> (8 * idx[15:0])) & lmask;
                else
                    out_fault = 1'b1;
            end
            2'd2: out_bytes = (padded >> (64 * container)) & lmask;
            default: out_bytes = 0;
        endcase
        out_present = kind != 2'd0 && length != 0;
    end
endmodule

`default_nettype none
// pipe_adjust: bpf_xdp_adjust_head / _tail (docs/pipeline.md 5.5; ops adjh 26, adjt 27).
//
// d = B's low 32 bits, signed; h, e at stage entry.
//   adjh: h' = h + d; h' < -FRAME_HEADROOM or h' > e - MIN_PACKET_BYTES: -EINVAL, no change;
//         else h' < -WINDOW_HEADROOM: fault (reason 2), nothing written; else 0, head = h'.
//   adjt: e' = e + d; e' > FRAME_END or e' < h + MIN_PACKET_BYTES: -EINVAL; else 0, end = e'.
// The change itself (and adjust_tail's zeroing) is applied at write-back by pipe_stage.
module pipe_adjust #(
    parameter NUM_CONTAINERS = 32,   // PHV containers (the PHV layout, pipe_defs.vh)
    parameter PREDICATE_BITS = 64,   // predicate bits (the PHV layout)
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64,  // H
    parameter FRAME_HEADROOM = 216,  // how far adjust_head may grow the frame, bytes
    parameter FRAME_END = 3520,      // largest data_end offset from the original data, bytes
    parameter MIN_PACKET_BYTES = 14  // the least adjust_* leaves, bytes
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                in_valid,    // the op executes
    input  wire                tail,        // 0 adjh, 1 adjt
    input  wire [63:0]         b,           // delta in the low 32 bits
    input  wire [POS_BITS-1:0] head,        // h (signed)
    input  wire [POS_BITS-1:0] end_pos,     // e (signed)
    output reg                 out_valid,   // executed without a fault: write out_result
    output reg                 out_fault,   // headroom fault
    output reg  [63:0]         out_result,  // 0 or -EINVAL
    output reg                 out_change,  // apply at write-back
    output reg                 out_tail,    // the change is to end (else head)
    output reg  [POS_BITS-1:0] out_pos      // the new head or end
);
`include "pipe_defs.vh"

    localparam [63:0] EINVAL = 64'hffffffffffffffea;  // -22

    reg signed [35:0] d, h, e, np;
    reg einval, fault;

    // computed at the clock edge when the op executes (see pipe_alu)
    always @(posedge clk) begin
        einval = 1'b0;
        fault = 1'b0;
        if (in_valid) begin
            d = $signed({{4{b[31]}}, b[31:0]});
            h = $signed({{(36 - POS_BITS){head[POS_BITS-1]}}, head});
            e = $signed({{(36 - POS_BITS){end_pos[POS_BITS-1]}}, end_pos});
            if (!tail) begin
                np = h + d;
                einval = np < -FRAME_HEADROOM || np > e - MIN_PACKET_BYTES;
                fault = !einval && np < -WINDOW_HEADROOM;
            end else begin
                np = e + d;
                einval = np > FRAME_END || np < h + MIN_PACKET_BYTES;
            end
            out_result <= einval ? EINVAL : 64'd0;
            out_tail <= tail;
            out_pos <= np[POS_BITS-1:0];
        end
        if (rst) begin
            out_valid <= 1'b0;
            out_fault <= 1'b0;
            out_change <= 1'b0;
        end else begin
            out_valid <= in_valid && !fault;
            out_fault <= in_valid && fault;
            out_change <= in_valid && !fault && !einval;
        end
    end
endmodule

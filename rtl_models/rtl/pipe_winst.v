`default_nettype none
// pipe_winst: a window store port (docs/pipeline.md 5.4; ops wst 24, wstv 25).
//
// The address is computed as for a load (pipe_winld); the store itself happens at the
// stage's write-back (pipe_stage), in ascending slot order, and only if the packet has not
// faulted. Outputs are registered: the window index, the byte count and B's low bytes.
module pipe_winst #(
    parameter NUM_CONTAINERS = 32,   // PHV containers (the PHV layout, pipe_defs.vh)
    parameter PREDICATE_BITS = 64,   // predicate bits (the PHV layout)
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64   // H
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                in_valid,   // the op executes
    input  wire                variable,   // wstv: add C[a]
    input  wire [1:0]          size,       // size code
    input  wire [15:0]         offset,     // signed packet offset
    input  wire [63:0]         a,          // C[a]
    input  wire [63:0]         b,          // the value stored (low bytes)
    input  wire [POS_BITS-1:0] head,       // h at stage entry (signed)
    output reg                 out_valid,  // executed without a fault: store at write-back
    output reg                 out_fault,  // executed and faulted
    output reg  [15:0]         out_index,  // window index of the first byte
    output reg  [3:0]          out_bytes,  // 1, 2, 4, 8
    output reg  [63:0]         out_data    // B's low bytes, zero above
);
`include "pipe_defs.vh"

    reg signed [71:0] idx;
    reg [63:0] smask;
    reg in_win;

    // computed at the clock edge when the op executes (see pipe_alu)
    always @(posedge clk) begin
        in_win = 1'b0;
        if (in_valid) begin
            idx = $signed({8'd0, variable ? a : 64'd0}) + $signed({{56{offset[15]}}, offset})
                + $signed({{(72 - POS_BITS){head[POS_BITS-1]}}, head}) + WINDOW_HEADROOM;
            in_win = idx >= 0 && idx + (72'sd1 << size) <= WIN_BYTES;
            case (size)
                2'd0: smask = 64'h00000000000000ff;
                2'd1: smask = 64'h000000000000ffff;
                2'd2: smask = 64'h00000000ffffffff;
                default: smask = {64{1'b1}};
            endcase
            out_index <= idx[15:0];
            out_bytes <= 4'd1 << size;
            out_data <= b & smask;
        end
        if (rst) begin
            out_valid <= 1'b0;
            out_fault <= 1'b0;
        end else begin
            out_valid <= in_valid && in_win;
            out_fault <= in_valid && !in_win;
        end
    end
endmodule

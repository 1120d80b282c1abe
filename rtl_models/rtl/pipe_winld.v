`default_nettype none
// pipe_winld: a window load port (docs/pipeline.md 5.4; ops wld 22, wldv 23).
//
// Packet offset x = offset (signed 16 bits) [+ C[a] (unsigned 64 bits) for wldv], exact,
// without wrap-around; the window index is i = H + head + x. The load is in window iff
// 0 <= i and i + n <= H + W, else it faults (reason 1) and writes nothing. Loads are
// little-endian, zero- or (sgn) sign-extended. Results are registered.
module pipe_winld #(
    parameter NUM_CONTAINERS = 32,   // PHV containers (the PHV layout, pipe_defs.vh)
    parameter PREDICATE_BITS = 64,   // predicate bits (the PHV layout)
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64   // H
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       in_valid,   // the op executes
    input  wire                       variable,   // wldv: add C[a]
    input  wire                       sgn,
    input  wire [1:0]                 size,       // size code
    input  wire [15:0]                offset,     // signed packet offset
    input  wire [63:0]                a,          // C[a]
    input  wire [POS_BITS-1:0]        head,       // h at stage entry (signed)
    input  wire [WIN_BITS-1:0]        win,
    output reg                        out_valid,  // executed without a fault: write out_value
    output reg                        out_fault,  // executed and faulted
    output reg  [63:0]                out_value
);
`include "pipe_defs.vh"

    reg signed [71:0] idx;
    reg [63:0] raw, smask;
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
            raw = in_win ? (win >> (8 * idx[15:0])) & smask : 64'd0;
            if (sgn) begin
                case (size)
                    2'd0: raw = {{56{raw[7]}}, raw[7:0]};
                    2'd1: raw = {{48{raw[15]}}, raw[15:0]};
                    2'd2: raw = {{32{raw[31]}}, raw[31:0]};
                    default: raw = raw;
                endcase
            end
            out_value <= raw;
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

`default_nettype none
// pipe_extern_rand: the random extern, xorshift32 (docs/pipeline.md 5.7, kind 2).
//
// x ^= x << 13; x ^= x >> 17; x ^= x << 5 (32 bits); the new state is the result. One
// state per bank (pass), set to the unit's seed at reset, advanced once per packet that
// executes the unit and has not faulted: the new state is written at the write-back cycle
// (w_commit) and forwarded to a packet reading in that cycle.
module pipe_extern_rand #(
    parameter NUM_PASSES = 1  // banks
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire [32*NUM_PASSES-1:0] seeds,     // reset state per bank
    input  wire                     in_valid,  // execute cycle: the unit executes
    input  wire [7:0]               in_bank,
    input  wire                     w_commit,  // write-back cycle: the packet has not faulted
    output reg                      out_valid,
    output reg  [63:0]              out_value
);
    reg [32*NUM_PASSES-1:0] state_reg;
    reg [7:0] pend_bank_reg;
    reg [31:0] pend_state_reg;
    wire commit = out_valid && w_commit;

    reg [31:0] x;
    always @* begin
        x = (commit && pend_bank_reg == in_bank) ? pend_state_reg
                                                 : state_reg[32 * in_bank +: 32];
        x = x ^ (x << 13);
        x = x ^ (x >> 17);
        x = x ^ (x << 5);
    end

    always @(posedge clk) begin
        pend_bank_reg <= in_bank;
        pend_state_reg <= x;
        out_value <= {32'd0, x};
        if (rst) begin
            out_valid <= 1'b0;
            state_reg <= seeds;
        end else begin
            out_valid <= in_valid && in_bank < NUM_PASSES;
            if (commit)
                state_reg[32 * pend_bank_reg +: 32] <= pend_state_reg;
        end
    end
endmodule

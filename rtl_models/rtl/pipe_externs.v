`default_nettype none
// pipe_externs: a stage's extern units (docs/pipeline.md 5.7).
//
// The stage has NE = CHECKSUM_UNITS + HASH_UNITS + RANDOM_UNITS + TIMESTAMP_UNITS extern
// unit words (stLL_ext.hex); each word configures a kind. The hardware has that many
// engines of each kind, and engine n of a kind serves the n-th unit (ascending) configured
// with that kind (validation keeps the count per kind within the target's). Execute cycle:
// predicate, input buffers (pipe_extbuf), the engine; write-back cycle: the result for
// container dst unless the buffers faulted (window fault, reason 1). An idle engine's
// buffers see constant inputs (no simulation events).
module pipe_externs #(
    parameter NUM_CONTAINERS = 32,   // PHV layout
    parameter PREDICATE_BITS = 64,   // P
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64,  // H
    parameter CHECKSUM_UNITS = 1,    // checksum engines per stage
    parameter HASH_UNITS = 1,        // hash engines per stage
    parameter RANDOM_UNITS = 1,      // random engines per stage
    parameter TIMESTAMP_UNITS = 1,   // timestamp engines per stage
    parameter NUM_PASSES = 1,        // banks
    parameter CLOCK_KHZ = 250000     // core clock, kHz (timestamps)
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire [128*NE_ALL-1:0]        cfg_all,    // extern words of every bank
    // execute cycle
    input  wire                         x_valid,
    input  wire [7:0]                   x_bank,
    input  wire [64*64-1:0]             x_rd,
    input  wire [PREDICATE_BITS-1:0]    x_pt,
    input  wire [POS_BITS-1:0]          x_head,
    input  wire [WIN_BITS-1:0]          x_win,
    input  wire [63:0]                  x_admit,
    // write-back cycle
    input  wire                         w_commit,   // the packet has not faulted
    output wire [NE_MIN1-1:0]           w_we,       // engine e writes w_value[e] to w_dst[e]
    output wire [6*NE_MIN1-1:0]         w_dst,
    output wire [64*NE_MIN1-1:0]        w_value,
    output wire                         w_fault     // a buffer faulted (punt reason 1)
);
`include "pipe_defs.vh"
    localparam NE = CHECKSUM_UNITS + HASH_UNITS + RANDOM_UNITS + TIMESTAMP_UNITS;
    localparam NE_MIN1 = NE > 0 ? NE : 1;
    localparam NE_ALL = NUM_PASSES * NE_MIN1;
    localparam E_HASH = CHECKSUM_UNITS;
    localparam E_RAND = E_HASH + HASH_UNITS;
    localparam E_TS = E_RAND + RANDOM_UNITS;

`ifndef SYNTHESIS
    initial begin
        if (NE > 16) begin
            $display("pipe_externs: %0d extern units exceed 16", NE);
            $finish;
        end
    end
`endif

    // {found, unit} of the n-th unit of `kind` in one bank's words
    function [4:0] nth_unit;
        input [128*NE_MIN1-1:0] words;
        input [1:0] kind;
        input integer n;
        integer u, cnt;
        begin
            nth_unit = 0;
            cnt = 0;
            for (u = 0; u < NE; u = u + 1) begin
                if (words[128 * u] && words[128 * u + 1 +: 2] == kind) begin
                    if (cnt == n)
                        nth_unit = {1'b1, u[3:0]};
                    cnt = cnt + 1;
                end
            end
        end
    endfunction

    wire [128*NE_MIN1-1:0] words = cfg_all[128 * NE_MIN1 * x_bank +: 128 * NE_MIN1];
    wire [63:0] pt64 = x_pt;  // zero-extended

    reg [NE_MIN1-1:0] fault_reg;
    assign w_fault = |fault_reg;

    genvar e;
    generate
        if (NE == 0) begin : g_none
            assign w_we = 1'b0;
            assign w_dst = 6'd0;
            assign w_value = 64'd0;
            always @(posedge clk)
                fault_reg <= 1'b0;
        end
        for (e = 0; e < NE; e = e + 1) begin : g_engine
            localparam [1:0] KIND = e < E_HASH ? 2'd0 : e < E_RAND ? 2'd1 : e < E_TS ? 2'd2 : 2'd3;
            localparam N = e < E_HASH ? e : e < E_RAND ? e - E_HASH : e < E_TS ? e - E_RAND
                                                                            : e - E_TS;
            wire [4:0] pick = nth_unit(words, KIND, N);
            wire [127:0] w = words[128 * pick[3:0] +: 128];
            wire exec = x_valid && x_bank < NUM_PASSES && pick[4] && (pt64[w[15:10]] ^ w[16]);
            wire [31:0] seed = w[17] ? x_rd[64 * w[23:18] +: 32] : w[127:96];

            wire [511:0] xb, yb;
            wire xp, yp, xf, yf;
            pipe_extbuf #(
                .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
                .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM)
            ) xbuf (
                .kind(w[25:24]), .offset(w[41:26]), .container(w[47:42]), .length(w[54:48]),
                .head(exec ? x_head : {POS_BITS{1'b0}}), .win(exec ? x_win : {WIN_BITS{1'b0}}),
                .rd(exec ? x_rd : {(64 * 64){1'b0}}),
                .out_bytes(xb), .out_present(xp), .out_fault(xf)
            );
            pipe_extbuf #(
                .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
                .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM)
            ) ybuf (
                .kind(KIND == 2'd0 ? w[56:55] : 2'd0), .offset(w[72:57]), .container(w[78:73]),
                .length(w[85:79]), .head(exec ? x_head : {POS_BITS{1'b0}}),
                .win(exec ? x_win : {WIN_BITS{1'b0}}),
                .rd(exec ? x_rd : {(64 * 64){1'b0}}),
                .out_bytes(yb), .out_present(yp), .out_fault(yf)
            );
            wire fault = (KIND == 2'd0 || KIND == 2'd1) && (xf || yf);

            wire v;
            wire [63:0] value;
            if (KIND == 2'd0) begin : g_csum
                pipe_extern_csum engine (
                    .clk(clk), .rst(rst), .in_valid(exec), .mode(w[3]),
                    .x_bytes(xb), .x_length(w[54:48]), .x_present(xp),
                    .y_bytes(yb), .y_present(yp), .seed(seed),
                    .out_valid(v), .out_value(value)
                );
            end else if (KIND == 2'd1) begin : g_hash
                pipe_extern_hash engine (
                    .clk(clk), .rst(rst), .in_valid(exec), .key_bytes(xb),
                    .key_length(w[54:48]), .seed(seed), .out_valid(v), .out_value(value)
                );
            end else if (KIND == 2'd2) begin : g_rand
                // reset state per bank: the seed of this engine's unit in that bank
                wire [32*NUM_PASSES-1:0] seeds;
                genvar b;
                for (b = 0; b < NUM_PASSES; b = b + 1) begin : g_seed
                    wire [4:0] pb = nth_unit(cfg_all[128 * NE_MIN1 * b +: 128 * NE_MIN1],
                                             2'd2, N);
                    assign seeds[32 * b +: 32] =
                        pb[4] ? cfg_all[128 * NE_MIN1 * b + 128 * pb[3:0] + 96 +: 32] : 32'd0;
                end
                pipe_extern_rand #(.NUM_PASSES(NUM_PASSES)) engine (
                    .clk(clk), .rst(rst), .seeds(seeds), .in_valid(exec), .in_bank(x_bank),
                    .w_commit(w_commit), .out_valid(v), .out_value(value)
                );
            end else begin : g_ts
                pipe_extern_ts #(.CLOCK_KHZ(CLOCK_KHZ)) engine (
                    .clk(clk), .rst(rst), .in_valid(exec), .admit_cycle(x_admit),
                    .out_valid(v), .out_value(value)
                );
            end

            reg [5:0] dst_reg;
            always @(posedge clk) begin
                dst_reg <= w[9:4];
                if (rst)
                    fault_reg[e] <= 1'b0;
                else
                    fault_reg[e] <= exec && fault;
            end
            assign w_we[e] = v && !fault_reg[e];
            assign w_dst[6 * e +: 6] = dst_reg;
            assign w_value[64 * e +: 64] = value;
        end
    endgenerate
endmodule

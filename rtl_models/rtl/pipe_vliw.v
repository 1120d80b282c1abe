`default_nettype none
// pipe_vliw: a stage's VLIW action unit (docs/pipeline.md 5.3 - 5.5).
//
// 64 slots; slot s holds one op (word s of stLL_vliw.hex) and writes index s: containers
// 0..C-1 and the metadata 51..53 have an ALU each (pipe_alu); 58..63 discard their result.
// Window loads, window stores and the adjust op are served by shared ports: load port n
// (pipe_winld) executes the n-th slot (ascending) holding wld / wldv, store port n
// (pipe_winst) the n-th wst / wstv, and one pipe_adjust the adjh / adjt (validation keeps
// the counts within window_loads, window_stores and one). Execute cycle: operands from the
// read bus, predicates P_t; write-back cycle (registered outputs, merged into the PHV by
// pipe_stage): per ALU slot a write enable and value, per load port its slot and value,
// the stores in ascending slot order, the adjust result and change, and the fault with the
// reason of the lowest faulting slot (1 window, 2 headroom).
module pipe_vliw #(
    parameter NUM_CONTAINERS = 32,   // C
    parameter PREDICATE_BITS = 64,   // P
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64,  // H
    parameter WINDOW_LOADS = 8,      // load ports
    parameter WINDOW_STORES = 4,     // store ports
    parameter MUL_MAX_BITS = 32,     // widest mul
    parameter DIV = "none",          // divider
    parameter FRAME_HEADROOM = 216,  // adjust_head limit, bytes
    parameter FRAME_END = 3520,      // adjust_tail limit, bytes
    parameter MIN_PACKET_BYTES = 14  // shortest packet adjust_* leaves, bytes
) (
    input  wire                          clk,
    input  wire                          rst,
    // execute cycle
    input  wire                          x_valid,
    input  wire [64*128-1:0]             x_cfg,     // VLIW words of the PHV's bank
    input  wire [64*64-1:0]              x_rd,
    input  wire [PREDICATE_BITS-1:0]     x_pt,
    input  wire [POS_BITS-1:0]           x_head,
    input  wire [POS_BITS-1:0]           x_end,
    input  wire [WIN_BITS-1:0]           x_win,
    // write-back cycle (pipe_stage merges the results into the PHV)
    output wire [63:0]                   w_alu_valid,  // ALU of slot s: write w_alu_value[s]
    output wire [64*64-1:0]              w_alu_value,
    output wire [LD_N-1:0]               w_ld_valid,   // load port n: write slot w_ld_slot[n]
    output reg  [6*LD_N-1:0]             w_ld_slot,
    output wire [64*LD_N-1:0]            w_ld_value,
    output reg                           w_fault,
    output reg  [1:0]                    w_reason,     // of the lowest faulting slot
    output wire [ST_N-1:0]               w_st_valid,
    output wire [16*ST_N-1:0]            w_st_index,
    output wire [4*ST_N-1:0]             w_st_bytes,
    output wire [64*ST_N-1:0]            w_st_data,
    output wire                          w_adj_valid,  // write w_adj_result to w_adj_slot
    output reg  [5:0]                    w_adj_slot,
    output wire [63:0]                   w_adj_result,
    output wire                          w_adj_change,
    output wire                          w_adj_tail,
    output wire [POS_BITS-1:0]           w_adj_pos
);
`include "pipe_defs.vh"
    localparam LD_N = WINDOW_LOADS > 0 ? WINDOW_LOADS : 1;
    localparam ST_N = WINDOW_STORES > 0 ? WINDOW_STORES : 1;

    // {found, slot} of the n-th slot whose opcode is lo or lo + 1
    function [6:0] nth_slot;
        input [64*6-1:0] opcodes;
        input [5:0] lo;
        input integer n;
        integer s, cnt;
        begin
            nth_slot = 0;
            cnt = 0;
            for (s = 0; s < 64; s = s + 1) begin
                if (opcodes[6 * s +: 6] == lo || opcodes[6 * s +: 6] == lo + 6'd1) begin
                    if (cnt == n)
                        nth_slot = {1'b1, s[5:0]};
                    cnt = cnt + 1;
                end
            end
        end
    endfunction

    wire [63:0] pt64 = x_pt;  // zero-extended
    wire [64*6-1:0] opcodes;
    wire [63:0] pred_ok;

    genvar s, n;
    generate
        for (s = 0; s < 64; s = s + 1) begin : g_slot
            wire [127:0] w = x_cfg[128 * s +: 128];
            assign opcodes[6 * s +: 6] = w[5:0];
            assign pred_ok[s] = pt64[w[13:8]] ^ w[14];
            if (s < NUM_CONTAINERS || (s >= 51 && s <= 53)) begin : g_alu
                pipe_alu #(.MUL_MAX_BITS(MUL_MAX_BITS), .DIV(DIV)) alu (
                    .clk(clk), .rst(rst), .in_valid(x_valid && pred_ok[s]),
                    .opcode(w[5:0]), .w32(w[6]), .sgn(w[7]), .size(w[29:28]),
                    .offset(w[32:30]), .sel(pt64[w[51:46]]),
                    .a(x_rd[64 * w[20:15] +: 64]),
                    .b(w[27] ? w[127:64] : x_rd[64 * w[26:21] +: 64]),
                    .out_valid(w_alu_valid[s]), .out_result(w_alu_value[64 * s +: 64])
                );
            end else begin : g_no_alu
                assign w_alu_valid[s] = 1'b0;
                assign w_alu_value[64 * s +: 64] = 64'd0;
            end
        end
    endgenerate

    // -- load ports -------------------------------------------------------------------------
    wire [LD_N-1:0] ld_fault;
    generate
        for (n = 0; n < WINDOW_LOADS; n = n + 1) begin : g_ld
            wire [6:0] pick = nth_slot(opcodes, 6'd22, n);
            wire [127:0] w = x_cfg[128 * pick[5:0] +: 128];
            pipe_winld #(
                .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
                .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM)
            ) port (
                .clk(clk), .rst(rst), .in_valid(x_valid && pick[6] && pred_ok[pick[5:0]]),
                .variable(w[0]), .sgn(w[7]), .size(w[29:28]), .offset(w[45:30]),
                .a(x_rd[64 * w[20:15] +: 64]), .head(x_head), .win(x_win),
                .out_valid(w_ld_valid[n]), .out_fault(ld_fault[n]),
                .out_value(w_ld_value[64 * n +: 64])
            );
            always @(posedge clk)
                w_ld_slot[6 * n +: 6] <= pick[5:0];
        end
        if (WINDOW_LOADS == 0) begin : g_no_ld
            assign w_ld_valid = 1'b0;
            assign ld_fault = 1'b0;
            assign w_ld_value = 64'd0;
            always @(posedge clk)
                w_ld_slot <= 6'd0;
        end
    endgenerate

    // -- store ports ------------------------------------------------------------------------
    wire [ST_N-1:0] st_fault;
    reg [6*ST_N-1:0] st_slot_reg;
    generate
        for (n = 0; n < WINDOW_STORES; n = n + 1) begin : g_st
            wire [6:0] pick = nth_slot(opcodes, 6'd24, n);
            wire [127:0] w = x_cfg[128 * pick[5:0] +: 128];
            pipe_winst #(
                .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
                .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM)
            ) port (
                .clk(clk), .rst(rst), .in_valid(x_valid && pick[6] && pred_ok[pick[5:0]]),
                .variable(w[0]), .size(w[29:28]), .offset(w[45:30]),
                .a(x_rd[64 * w[20:15] +: 64]),
                .b(w[27] ? w[127:64] : x_rd[64 * w[26:21] +: 64]), .head(x_head),
                .out_valid(w_st_valid[n]), .out_fault(st_fault[n]),
                .out_index(w_st_index[16 * n +: 16]), .out_bytes(w_st_bytes[4 * n +: 4]),
                .out_data(w_st_data[64 * n +: 64])
            );
            always @(posedge clk)
                st_slot_reg[6 * n +: 6] <= pick[5:0];
        end
        if (WINDOW_STORES == 0) begin : g_no_st
            assign w_st_valid = 1'b0;
            assign st_fault = 1'b0;
            assign w_st_index = 16'd0;
            assign w_st_bytes = 4'd0;
            assign w_st_data = 64'd0;
            always @(posedge clk)
                st_slot_reg <= 6'd0;
        end
    endgenerate

    // -- adjust -----------------------------------------------------------------------------
    wire [6:0] adj_pick = nth_slot(opcodes, 6'd26, 0);
    wire [127:0] adj_w = x_cfg[128 * adj_pick[5:0] +: 128];
    wire adj_fault;
    pipe_adjust #(
        .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
        .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM),
        .FRAME_HEADROOM(FRAME_HEADROOM), .FRAME_END(FRAME_END),
        .MIN_PACKET_BYTES(MIN_PACKET_BYTES)
    ) adjust (
        .clk(clk), .rst(rst), .in_valid(x_valid && adj_pick[6] && pred_ok[adj_pick[5:0]]),
        .tail(adj_w[0]), .b(adj_w[27] ? adj_w[127:64] : x_rd[64 * adj_w[26:21] +: 64]),
        .head(x_head), .end_pos(x_end),
        .out_valid(w_adj_valid), .out_fault(adj_fault), .out_result(w_adj_result),
        .out_change(w_adj_change), .out_tail(w_adj_tail), .out_pos(w_adj_pos)
    );
    always @(posedge clk)
        w_adj_slot <= adj_pick[5:0];

    // -- write-back: the fault and the reason of the lowest faulting slot -------------------
    integer k;
    reg [6:0] lowest;
    always @* begin
        lowest = 7'd64;
        w_reason = 2'd0;
        for (k = 0; k < WINDOW_LOADS; k = k + 1) begin
            if (ld_fault[k] && w_ld_slot[6 * k +: 6] < lowest) begin
                lowest = w_ld_slot[6 * k +: 6];
                w_reason = 2'd1;
            end
        end
        for (k = 0; k < WINDOW_STORES; k = k + 1) begin
            if (st_fault[k] && st_slot_reg[6 * k +: 6] < lowest) begin
                lowest = st_slot_reg[6 * k +: 6];
                w_reason = 2'd1;
            end
        end
        if (adj_fault && w_adj_slot < lowest)
            w_reason = 2'd2;
        w_fault = w_reason != 2'd0;
    end
endmodule

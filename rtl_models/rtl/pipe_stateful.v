`default_nettype none
// pipe_stateful: one stateful ALU of a stage (docs/pipeline.md 5.6), all passes' banks.
//
// Execute cycle: index = hit address of table `table` (no hit: no-op) or C[index_container]
// low 32 bits; addr = base + index * stride (addr >= words: no-op); the field
// [offset, offset + size) of REG[addr] is read, the op computes the new value and the old
// one is fetched. Write-back cycle: the word is written unless the packet faulted
// (w_commit = 0). A packet one cycle behind reads in the cycle of that write: the pending
// word is forwarded, so packets entering one per clock see each other's writes.
// Registers persist across packets; bank k (pass k) holds REG at k * REG_WORDS + addr,
// loaded from stLL_rU.hex and written by the control plane port between data-plane writes.
module pipe_stateful #(
    parameter PREDICATE_BITS = 64,  // P
    parameter TABLES = 4,           // table units per stage
    parameter REG_WORDS = 1024,     // 64-bit registers per bank (>= every configured words)
    parameter NUM_PASSES = 1,       // banks
    parameter NUM_STAGES = 12,      // physical stages (bank k of stage s is LL = k*S + s)
    parameter STAGE_INDEX = 0,      // this physical stage
    parameter UNIT = 0,             // stateful unit number
    parameter STATEFUL_ALUS = 2,    // stateful units per stage (words of stLL_sfu.hex)
    parameter IMAGE_DIR = "."       // directory of the memory images
) (
    input  wire                      clk,
    input  wire                      rst,
    // execute cycle
    input  wire                      x_valid,
    input  wire [191:0]              x_cfg,     // stateful word of the PHV's bank
    input  wire [7:0]                x_bank,
    input  wire [64*64-1:0]          x_rd,      // read bus at stage entry
    input  wire [PREDICATE_BITS-1:0] x_pt,      // P_t
    input  wire [TABLES-1:0]         x_hit,     // table hits of this stage
    input  wire [16*TABLES-1:0]      x_addr,    // table hit addresses
    // write-back cycle
    input  wire                      w_commit,  // the packet has not faulted: write
    output reg                       w_fetch_en,
    output reg  [5:0]                w_fetch_container,
    output reg  [63:0]               w_fetch_value,
    // control plane register writes
    input  wire                      cp_valid,
    input  wire [7:0]                cp_bank,
    input  wire [15:0]               cp_addr,
    input  wire [63:0]               cp_data,
    output wire                      cp_ready
);
`ifndef SYNTHESIS
`include "pipe_files.vh"
`endif
    localparam DEPTH = NUM_PASSES * REG_WORDS;

    reg [63:0] mem [0:DEPTH-1];

    wire        in_use = x_cfg[0];
    wire [2:0]  op = x_cfg[3:1];
    wire [1:0]  size = x_cfg[5:4];
    wire [2:0]  offset = x_cfg[8:6];
    wire        by_container = x_cfg[9];
    wire [2:0]  table_slot = x_cfg[12:10];
    wire [5:0]  index_container = x_cfg[18:13];
    wire [15:0] base = x_cfg[34:19];
    wire [7:0]  stride = x_cfg[42:35];
    wire [5:0]  b_idx = x_cfg[48:43];
    wire        b_imm = x_cfg[49];
    wire [5:0]  cmp_idx = x_cfg[55:50];
    wire [5:0]  fetch = x_cfg[61:56];
    wire        fetch_en = x_cfg[62];
    wire        pred_neg = x_cfg[63];
    wire [5:0]  pred = x_cfg[69:64];
    wire [16:0] words = x_cfg[86:70];
    wire [63:0] imm = x_cfg[191:128];

    wire [63:0] pt64 = x_pt;  // zero-extended
    wire [7:0]  hits = x_hit;  // zero-extended
    wire [16*8-1:0] addrs = x_addr;

    // pending write (write-back cycle)
    reg         pend_valid_reg;
    reg [7:0]   pend_bank_reg;
    reg [48:0]  pend_addr_reg;
    reg [63:0]  pend_word_reg;
    wire        commit = pend_valid_reg && w_commit;

    reg [31:0] index;
    reg [48:0] addr;
    reg has_index, exec;
    reg [63:0] fmask, old, bval, cval, nval;
    reg writes;
    reg [63:0] word, new_word;

    // computed at the clock edge for a PHV when the unit is in use (see pipe_alu)
    always @(posedge clk) begin
        exec = 1'b0;
        writes = 1'b0;
        if (x_valid && in_use) begin
            has_index = by_container || hits[table_slot];
            index = by_container ? x_rd[64 * index_container +: 32]
                                 : {16'd0, addrs[16 * table_slot +: 16]};
            addr = base + index * stride;
            exec = (pt64[pred] ^ pred_neg) && has_index && addr < words && addr < REG_WORDS &&
                   x_bank < NUM_PASSES;
            if (exec) begin
                word = (commit && pend_bank_reg == x_bank && pend_addr_reg == addr)
                       ? pend_word_reg : mem[x_bank * REG_WORDS + addr[15:0]];
                case (size)
                    2'd0: fmask = 64'h00000000000000ff;
                    2'd1: fmask = 64'h000000000000ffff;
                    2'd2: fmask = 64'h00000000ffffffff;
                    default: fmask = {64{1'b1}};
                endcase
                old = (word >> (8 * offset)) & fmask;
                bval = b_imm ? imm : x_rd[64 * b_idx +: 64];
                cval = x_rd[64 * cmp_idx +: 64];
                writes = 1'b1;
                case (op)
                    3'd0: begin nval = old; writes = 1'b0; end        // read
                    3'd1: nval = bval;                                // write
                    3'd2: nval = old + bval;                          // add
                    3'd3: nval = old | bval;                          // or
                    3'd4: nval = old & bval;                          // and
                    3'd5: nval = old ^ bval;                          // xor
                    3'd6: nval = bval;                                // xchg
                    default: begin                                    // cmpxchg
                        nval = bval;
                        writes = old == (cval & fmask);
                    end
                endcase
                new_word = (word & ~(fmask << (8 * offset))) | ((nval & fmask) << (8 * offset));
                pend_bank_reg <= x_bank;
                pend_addr_reg <= addr;
                pend_word_reg <= new_word;
                w_fetch_container <= fetch;
                w_fetch_value <= old;
            end
        end
        if (rst) begin
            pend_valid_reg <= 1'b0;
            w_fetch_en <= 1'b0;
        end else begin
            pend_valid_reg <= exec && writes;
            w_fetch_en <= exec && fetch_en;
        end
        if (commit)
            mem[pend_bank_reg * REG_WORDS + pend_addr_reg[15:0]] <= pend_word_reg;
        else if (cp_valid && cp_bank < NUM_PASSES && cp_addr < REG_WORDS)
            mem[cp_bank * REG_WORDS + cp_addr] <= cp_data;
    end

    assign cp_ready = !commit;

`ifndef SYNTHESIS
    reg [191:0] sfu_words [0:STATEFUL_ALUS-1];
    reg [191:0] w;
    integer b, k, ll, n;
    initial begin
        if (UNIT >= STATEFUL_ALUS || REG_WORDS < 1 || REG_WORDS > 65536 || NUM_PASSES < 1 ||
            TABLES > 8) begin
            $display("pipe_stateful: bad UNIT %0d, STATEFUL_ALUS %0d, REG_WORDS %0d, NUM_PASSES %0d or TABLES %0d",
                     UNIT, STATEFUL_ALUS, REG_WORDS, NUM_PASSES, TABLES);
            $finish;
        end
        for (k = 0; k < DEPTH; k = k + 1)
            mem[k] = 0;
        for (b = 0; b < NUM_PASSES; b = b + 1) begin
            ll = b * NUM_STAGES + STAGE_INDEX;
            w = 0;
            if (file_exists(stage_file(ll, "_sfu.hex"))) begin
                $readmemh(stage_file(ll, "_sfu.hex"), sfu_words);
                w = sfu_words[UNIT];
            end
            n = w[86:70];
            if (w[0] && n > REG_WORDS) begin
                $display("pipe_stateful: stage %0d unit %0d has %0d words, REG_WORDS is %0d",
                         ll, UNIT, n, REG_WORDS);
                $finish;
            end
            if (w[0] && n > 0 && file_exists(unit_file(ll, "_r", UNIT, ".hex")))
                $readmemh(unit_file(ll, "_r", UNIT, ".hex"), mem,
                          b * REG_WORDS, b * REG_WORDS + n - 1);
        end
    end
`endif
endmodule

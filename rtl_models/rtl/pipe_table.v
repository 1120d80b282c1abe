`default_nettype none
// pipe_table: one table unit of a stage (docs/pipeline.md 5.2), all passes' banks.
//
// Cycle 1 (the stage's gateway cycle): the key is built from the entry containers, slice by
// slice (key byte 0 = the first byte of slice 0) and registered. Cycle 2 (table cycle): if
// the table is in use and enabled by P_g, the lookup runs and its result is registered:
//   exact    the valid entry whose key equals the key (lowest address: at most one)
//   ternary  the valid entry of lowest address with (key & mask) == (entry & mask)
//   lpm      as ternary; the mask holds the prefix (longest first, by validation)
//   direct   index = the key (1-4 bytes, little-endian); hit iff index < size
// The entry memories model SRAM / TCAM contents: {valid, key}, mask and action data per
// address; bank k (pass k) at addresses k * TABLE_DEPTH + i. They are loaded from
// stLL_tT_key.hex / _mask.hex / _data.hex and written by the control plane port (a write
// lands at a clock edge: a lookup sees the entry before or after it, never half of it).
module pipe_table #(
    parameter PREDICATE_BITS = 64,    // P
    parameter KEY_BITS = 512,         // widest key, bits
    parameter ACTION_CONTAINERS = 4,  // action data = 8 bytes per action container
    parameter TABLE_DEPTH = 1024,     // entries per bank (>= every configured size)
    parameter NUM_PASSES = 1,         // banks
    parameter NUM_STAGES = 12,        // physical stages (bank k of stage s is LL = k*S + s)
    parameter STAGE_INDEX = 0,        // this physical stage
    parameter SLOT = 0,               // table slot in the stage
    parameter TABLES = 4,             // table units per stage (words of stLL_tbl.hex)
    parameter IMAGE_DIR = "."         // directory of the memory images
) (
    input  wire                           clk,
    input  wire                           rst,
    // key cycle
    input  wire                           g_valid,  // a PHV is at stage entry
    input  wire [255:0]                   g_cfg,    // table word of the PHV's bank
    input  wire [7:0]                     g_bank,
    input  wire [64*64-1:0]               g_rd,     // read bus at stage entry
    // lookup cycle
    input  wire                           t_valid,  // a PHV is in the table cycle
    input  wire [PREDICATE_BITS-1:0]      t_pg,     // P_g
    // result, registered
    output reg                            x_hit,
    output reg  [15:0]                    x_addr,
    output reg  [64*ACTION_CONTAINERS-1:0] x_data,
    output reg  [255:0]                   x_cfg,    // the table word, for write-back
    // control plane write port
    input  wire                           cp_we,
    input  wire [7:0]                     cp_bank,
    input  wire [15:0]                    cp_addr,
    input  wire                           cp_entry_valid,  // 1 write, 0 delete
    input  wire [KEY_BITS-1:0]            cp_key,
    input  wire [KEY_BITS-1:0]            cp_mask,
    input  wire [64*ACTION_CONTAINERS-1:0] cp_data
);
`ifndef SYNTHESIS
`include "pipe_files.vh"
`endif
    localparam DEPTH = NUM_PASSES * TABLE_DEPTH;
    localparam DATA_BITS = 64 * ACTION_CONTAINERS;

    reg [KEY_BITS+3:0] key_mem [0:DEPTH-1];   // bit KEY_BITS: valid
    reg [KEY_BITS-1:0] mask_mem [0:DEPTH-1];
    reg [DATA_BITS-1:0] data_mem [0:DEPTH-1];

    // -- key cycle --------------------------------------------------------------------------
    reg [KEY_BITS-1:0] key;
    reg [63:0] part;
    reg [15:0] sw;
    integer i, pos;

    reg [KEY_BITS-1:0] t_key_reg;
    reg [255:0] t_cfg_reg;
    reg [7:0] t_bank_reg;

    // built at the clock edge for a PHV when the table is in use (see pipe_alu)
    always @(posedge clk) begin
        if (g_valid) begin
            if (g_cfg[0]) begin
                key = 0;
                pos = 0;
                for (i = 0; i < 8; i = i + 1) begin
                    sw = g_cfg[40 + 16 * i +: 16];
                    if (sw[15]) begin
                        part = g_rd[64 * sw[5:0] +: 64] >> (8 * sw[8:6]);
                        part = part & ~({64{1'b1}} << (8 * sw[11:9]) << 8);
                        key = key | ({{(KEY_BITS > 64 ? KEY_BITS - 64 : 1){1'b0}}, part}
                                     << (8 * pos));
                        pos = pos + sw[11:9] + 1;
                    end
                end
                t_key_reg <= key;
            end
            t_cfg_reg <= g_cfg;
            t_bank_reg <= g_bank;
        end
    end

    // -- lookup cycle -----------------------------------------------------------------------
    wire [PREDICATE_BITS-1:0] t_pg_w = t_pg;
    wire [63:0] pg64 = t_pg_w;  // zero-extended
    wire in_use = t_cfg_reg[0];
    wire [1:0] kind = t_cfg_reg[2:1];
    wire enabled = pg64[t_cfg_reg[8:3]] ^ t_cfg_reg[9];
    wire [15:0] size = t_cfg_reg[31:16];

    reg found;
    reg [15:0] found_addr;
    reg [KEY_BITS+3:0] entry;
    reg [31:0] index;
    integer j, base;

    always @(posedge clk) begin
        if (t_valid)
            x_cfg <= t_cfg_reg;
        found = 1'b0;
        found_addr = 0;
        base = t_bank_reg * TABLE_DEPTH;
        if (t_valid && in_use && enabled && t_bank_reg < NUM_PASSES) begin
            if (kind == 2'd3) begin
                index = t_key_reg[31:0];
                if (index < size) begin
                    found = 1'b1;
                    found_addr = index[15:0];
                end
            end else begin
                for (j = 0; j < TABLE_DEPTH; j = j + 1) begin
                    if (!found && j < size) begin
                        entry = key_mem[base + j];
                        if (entry[KEY_BITS] &&
                            (((entry[KEY_BITS-1:0] ^ t_key_reg) &
                              (kind == 2'd0 ? {KEY_BITS{1'b1}} : mask_mem[base + j])) == 0)) begin
                            found = 1'b1;
                            found_addr = j;
                        end
                    end
                end
            end
        end
        if (t_valid) begin
            x_addr <= found_addr;
            x_data <= found ? data_mem[base + found_addr] : {DATA_BITS{1'b0}};
        end
        if (rst)
            x_hit <= 1'b0;
        else
            x_hit <= found;
    end

    // -- control plane ----------------------------------------------------------------------
    always @(posedge clk) begin
        if (cp_we && cp_bank < NUM_PASSES && cp_addr < TABLE_DEPTH) begin
            key_mem[cp_bank * TABLE_DEPTH + cp_addr] <= {3'b000, cp_entry_valid, cp_key};
            mask_mem[cp_bank * TABLE_DEPTH + cp_addr] <= cp_mask;
            data_mem[cp_bank * TABLE_DEPTH + cp_addr] <= cp_entry_valid ? cp_data
                                                                       : {DATA_BITS{1'b0}};
        end
    end

    // -- images and parameter checks --------------------------------------------------------
`ifndef SYNTHESIS
    reg [255:0] tbl_words [0:TABLES-1];
    reg [255:0] w;
    integer b, k, ll, n;
    initial begin
        if (KEY_BITS < 8 || KEY_BITS % 8 != 0 || KEY_BITS > 512) begin
            $display("pipe_table: KEY_BITS %0d must be a multiple of 8 in [8, 512]", KEY_BITS);
            $finish;
        end
        if (ACTION_CONTAINERS < 1 || ACTION_CONTAINERS > 8 || SLOT >= TABLES ||
            TABLE_DEPTH < 1 || TABLE_DEPTH > 65536 || NUM_PASSES < 1) begin
            $display("pipe_table: bad ACTION_CONTAINERS %0d, SLOT %0d, TABLES %0d, TABLE_DEPTH %0d or NUM_PASSES %0d",
                     ACTION_CONTAINERS, SLOT, TABLES, TABLE_DEPTH, NUM_PASSES);
            $finish;
        end
        for (k = 0; k < DEPTH; k = k + 1) begin
            key_mem[k] = 0;
            mask_mem[k] = 0;
            data_mem[k] = 0;
        end
        for (b = 0; b < NUM_PASSES; b = b + 1) begin
            ll = b * NUM_STAGES + STAGE_INDEX;
            w = 0;
            if (file_exists(stage_file(ll, "_tbl.hex"))) begin
                $readmemh(stage_file(ll, "_tbl.hex"), tbl_words);
                w = tbl_words[SLOT];
            end
            n = w[31:16];
            if (w[0] && n > TABLE_DEPTH) begin
                $display("pipe_table: stage %0d table %0d has %0d entries, TABLE_DEPTH is %0d",
                         ll, SLOT, n, TABLE_DEPTH);
                $finish;
            end
            if (w[0] && n > 0) begin
                if (w[2:1] != 2'd3 && file_exists(unit_file(ll, "_t", SLOT, "_key.hex")))
                    $readmemh(unit_file(ll, "_t", SLOT, "_key.hex"), key_mem,
                              b * TABLE_DEPTH, b * TABLE_DEPTH + n - 1);
                if ((w[2:1] == 2'd1 || w[2:1] == 2'd2) &&
                    file_exists(unit_file(ll, "_t", SLOT, "_mask.hex")))
                    $readmemh(unit_file(ll, "_t", SLOT, "_mask.hex"), mask_mem,
                              b * TABLE_DEPTH, b * TABLE_DEPTH + n - 1);
                if (w[175] && file_exists(unit_file(ll, "_t", SLOT, "_data.hex")))
                    $readmemh(unit_file(ll, "_t", SLOT, "_data.hex"), data_mem,
                              b * TABLE_DEPTH, b * TABLE_DEPTH + n - 1);
            end
        end
    end
`endif
endmodule

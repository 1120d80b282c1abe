`default_nettype none
// pipe_stage: one physical stage of the pipe target (docs/pipeline.md section 5).
//
// Four pipelined cycles, one PHV per clock; STAGE_CYCLES - 4 registers pad the latency:
//   G  gateways (P_g from P_in and the entry containers); table keys are built
//   T  table lookups, enabled by P_g
//   X  P_t = P_g with the tables' hit bits; VLIW slots, stateful units and externs execute,
//      predicated by P_t, reading the PHV as it entered the stage
//   W  write-back: containers (action data, VLIW, fetches, externs), metadata, then unless
//      the packet faulted: window stores in slot order, register writes, random states,
//      the adjust change; predicates = P_t | 1
// Bank k of every configuration memory is logical stage LL = k * NUM_STAGES + STAGE_INDEX,
// selected by the PHV's pass. Memories load from the images in IMAGE_DIR and can be
// rewritten through the image port (img_*); table entries and registers through the
// control plane port (cp_*).
module pipe_stage #(
    parameter NUM_CONTAINERS = 32,     // C
    parameter PREDICATE_BITS = 64,     // P
    parameter WINDOW_BYTES = 256,      // W
    parameter WINDOW_HEADROOM = 64,    // H
    parameter STAGE_CYCLES = 4,        // latency, cycles (>= 4)
    parameter GATEWAYS = 8,            // gateways per stage
    parameter TABLES = 4,              // table units per stage
    parameter STATEFUL_ALUS = 2,       // stateful units per stage
    parameter CHECKSUM_UNITS = 1,      // extern engines per kind
    parameter HASH_UNITS = 1,
    parameter RANDOM_UNITS = 1,
    parameter TIMESTAMP_UNITS = 1,
    parameter KEY_BITS = 512,          // widest table key, bits
    parameter ACTION_CONTAINERS = 4,   // containers one table hit writes
    parameter WINDOW_LOADS = 8,        // window load ports
    parameter WINDOW_STORES = 4,       // window store ports
    parameter MUL_MAX_BITS = 32,       // widest mul
    parameter DIV = "none",            // divider
    parameter FRAME_HEADROOM = 216,    // adjust_head limit, bytes
    parameter FRAME_END = 3520,        // adjust_tail limit, bytes
    parameter MIN_PACKET_BYTES = 14,   // shortest packet, bytes
    parameter CLOCK_KHZ = 250000,      // core clock (timestamps)
    parameter NUM_STAGES = 12,         // physical stages
    parameter STAGE_INDEX = 0,         // this stage
    parameter NUM_PASSES = 1,          // banks of every memory (passes of the configuration)
    parameter TABLE_DEPTH = 1024,      // entries per table unit and bank
    parameter REG_WORDS = 1024,        // registers per stateful unit and bank
    parameter IMAGE_DIR = "."          // directory of the memory images
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire                         in_valid,
    input  wire [PHV_BITS-1:0]          in_phv,
    output wire                         out_valid,
    output wire [PHV_BITS-1:0]          out_phv,
    // control plane: table entries (kind 0) and registers (kind 1) of bank cp_bank
    input  wire                         cp_valid,
    input  wire                         cp_kind,
    input  wire [7:0]                   cp_bank,
    input  wire [2:0]                   cp_unit,
    input  wire [15:0]                  cp_addr,
    input  wire                         cp_entry_valid,
    input  wire [KEY_BITS-1:0]          cp_key,
    input  wire [KEY_BITS-1:0]          cp_mask,
    input  wire [64*ACTION_CONTAINERS-1:0] cp_data,
    output wire                         cp_ready,
    // image port: configuration word img_addr of memory img_mem (0 gw, 1 vliw, 2 tbl,
    // 3 sfu, 4 ext) of bank img_bank
    input  wire                         img_valid,
    input  wire [7:0]                   img_bank,
    input  wire [2:0]                   img_mem,
    input  wire [7:0]                   img_addr,
    input  wire [255:0]                 img_data
);
`include "pipe_defs.vh"
`ifndef SYNTHESIS
`include "pipe_files.vh"
`endif
    localparam NE = CHECKSUM_UNITS + HASH_UNITS + RANDOM_UNITS + TIMESTAMP_UNITS;
    localparam G1 = GATEWAYS > 0 ? GATEWAYS : 1;
    localparam T1 = TABLES > 0 ? TABLES : 1;
    localparam R1 = STATEFUL_ALUS > 0 ? STATEFUL_ALUS : 1;
    localparam NE1 = NE > 0 ? NE : 1;
    localparam DATA_BITS = 64 * ACTION_CONTAINERS;

    // -- configuration memories -------------------------------------------------------------
    reg [127:0] gw_mem [0:NUM_PASSES*G1-1];
    reg [127:0] vliw_mem [0:NUM_PASSES*64-1];
    reg [255:0] tbl_mem [0:NUM_PASSES*T1-1];
    reg [191:0] sfu_mem [0:NUM_PASSES*R1-1];
    reg [127:0] ext_mem [0:NUM_PASSES*NE1-1];

    always @(posedge clk) begin
        if (img_valid && img_bank < NUM_PASSES) begin
            case (img_mem)
                3'd0: if (img_addr < GATEWAYS) gw_mem[img_bank * G1 + img_addr] <= img_data[127:0];
                3'd1: if (img_addr < 64) vliw_mem[img_bank * 64 + img_addr] <= img_data[127:0];
                3'd2: if (img_addr < TABLES) tbl_mem[img_bank * T1 + img_addr] <= img_data;
                3'd3: if (img_addr < STATEFUL_ALUS)
                          sfu_mem[img_bank * R1 + img_addr] <= img_data[191:0];
                3'd4: if (img_addr < NE) ext_mem[img_bank * NE1 + img_addr] <= img_data[127:0];
                default: ;
            endcase
        end
    end

    // -- G: gateways, keys ------------------------------------------------------------------
    wire [7:0] bank_g = in_phv[PHV_PASS +: 8];
    wire [RD_BITS-1:0] rd_g = phv_read_bus(in_phv);
    wire [G1-1:0] gw_en, gw_value;
    wire [6*G1-1:0] gw_dst;

    genvar g, t, u;
    generate
        for (g = 0; g < GATEWAYS; g = g + 1) begin : g_gw
            wire [127:0] cfg = gw_mem[bank_g * G1 + g];
            pipe_gateway #(.PREDICATE_BITS(PREDICATE_BITS)) gateway (
                .clk(clk), .rst(rst), .in_valid(in_valid), .cfg(cfg), .rd(rd_g),
                .pin(in_phv[PHV_PRED +: PREDICATE_BITS]),
                .out_en(gw_en[g]), .out_dst(gw_dst[6 * g +: 6]), .out_value(gw_value[g])
            );
        end
        if (GATEWAYS == 0) begin : g_no_gw
            assign gw_en = 1'b0;
            assign gw_value = 1'b0;
            assign gw_dst = 6'd0;
        end
    endgenerate

    reg v_t_reg;
    reg [PHV_BITS-1:0] phv_t_reg;
    always @(posedge clk) begin
        if (in_valid)
            phv_t_reg <= in_phv;
        v_t_reg <= rst ? 1'b0 : in_valid;
    end

    // -- T: P_g, table lookups --------------------------------------------------------------
    reg [PREDICATE_BITS-1:0] pg_t;
    integer i, j;
    always @* begin
        pg_t = phv_t_reg[PHV_PRED +: PREDICATE_BITS];
        for (i = 0; i < GATEWAYS; i = i + 1)
            if (gw_en[i] && gw_dst[6 * i +: 6] < PREDICATE_BITS)
                pg_t[gw_dst[6 * i +: 6]] = gw_value[i];
    end

    wire [T1-1:0] hit_x;
    wire [16*T1-1:0] addr_x;
    wire [DATA_BITS*T1-1:0] data_x;
    wire [256*T1-1:0] tcfg_x;
    generate
        for (t = 0; t < TABLES; t = t + 1) begin : g_tbl
            pipe_table #(
                .PREDICATE_BITS(PREDICATE_BITS), .KEY_BITS(KEY_BITS),
                .ACTION_CONTAINERS(ACTION_CONTAINERS), .TABLE_DEPTH(TABLE_DEPTH),
                .NUM_PASSES(NUM_PASSES), .NUM_STAGES(NUM_STAGES), .STAGE_INDEX(STAGE_INDEX),
                .SLOT(t), .TABLES(TABLES), .IMAGE_DIR(IMAGE_DIR)
            ) table_unit (
                .clk(clk), .rst(rst),
                .g_valid(in_valid), .g_cfg(tbl_mem[bank_g * T1 + t]), .g_bank(bank_g),
                .g_rd(rd_g),
                .t_valid(v_t_reg), .t_pg(pg_t),
                .x_hit(hit_x[t]), .x_addr(addr_x[16 * t +: 16]),
                .x_data(data_x[DATA_BITS * t +: DATA_BITS]), .x_cfg(tcfg_x[256 * t +: 256]),
                .cp_we(cp_valid && !cp_kind && cp_unit == t), .cp_bank(cp_bank),
                .cp_addr(cp_addr), .cp_entry_valid(cp_entry_valid), .cp_key(cp_key),
                .cp_mask(cp_mask), .cp_data(cp_data)
            );
        end
        if (TABLES == 0) begin : g_no_tbl
            assign hit_x = 1'b0;
            assign addr_x = 16'd0;
            assign data_x = {DATA_BITS{1'b0}};
            assign tcfg_x = 256'd0;
        end
    endgenerate

    reg v_x_reg;
    reg [PHV_BITS-1:0] phv_x_reg;
    reg [PREDICATE_BITS-1:0] pg_x_reg;
    always @(posedge clk) begin
        if (v_t_reg) begin
            phv_x_reg <= phv_t_reg;
            pg_x_reg <= pg_t;
        end
        v_x_reg <= rst ? 1'b0 : v_t_reg;
    end

    // -- X: P_t, VLIW, stateful, externs ----------------------------------------------------
    wire [7:0] bank_x = phv_x_reg[PHV_PASS +: 8];
    wire [RD_BITS-1:0] rd_x = phv_read_bus(phv_x_reg);
    wire [POS_BITS-1:0] head_x = phv_x_reg[PHV_HEAD +: POS_BITS];
    wire [POS_BITS-1:0] end_x = phv_x_reg[PHV_END +: POS_BITS];
    wire [WIN_BITS-1:0] win_x = phv_x_reg[PHV_WIN +: WIN_BITS];

    reg [PREDICATE_BITS-1:0] pt_x;
    reg [5:0] hp;
    always @* begin
        pt_x = pg_x_reg;
        for (i = 0; i < TABLES; i = i + 1) begin
            hp = tcfg_x[256 * i + 10 +: 6];
            if (tcfg_x[256 * i] && hp != 0 && hp < PREDICATE_BITS)
                pt_x[hp] = hit_x[i];
        end
    end

    // procedural, not 64 part-select assigns into one 8192-bit net: Icarus rebuilds such
    // a net bit by bit on every change of any part (the simulation's hot spot)
    reg [64*128-1:0] vliw_x;
    integer vw;
    always @* begin
        for (vw = 0; vw < 64; vw = vw + 1)
            vliw_x[128 * vw +: 128] = vliw_mem[bank_x * 64 + vw];
    end
    genvar s;

    localparam ST_N = WINDOW_STORES > 0 ? WINDOW_STORES : 1;
    localparam LD_N = WINDOW_LOADS > 0 ? WINDOW_LOADS : 1;
    wire [63:0] alu_valid;
    wire [64*64-1:0] alu_value;
    wire [LD_N-1:0] ld_valid;
    wire [6*LD_N-1:0] ld_slot;
    wire [64*LD_N-1:0] ld_value;
    wire adj_valid;
    wire [5:0] adj_slot;
    wire [63:0] adj_result;
    wire v_fault;
    wire [1:0] v_reason;
    wire [ST_N-1:0] st_valid;
    wire [16*ST_N-1:0] st_index;
    wire [4*ST_N-1:0] st_bytes;
    wire [64*ST_N-1:0] st_data;
    wire adj_change, adj_tail;
    wire [POS_BITS-1:0] adj_pos;
    pipe_vliw #(
        .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
        .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM),
        .WINDOW_LOADS(WINDOW_LOADS), .WINDOW_STORES(WINDOW_STORES),
        .MUL_MAX_BITS(MUL_MAX_BITS), .DIV(DIV), .FRAME_HEADROOM(FRAME_HEADROOM),
        .FRAME_END(FRAME_END), .MIN_PACKET_BYTES(MIN_PACKET_BYTES)
    ) vliw (
        .clk(clk), .rst(rst), .x_valid(v_x_reg), .x_cfg(vliw_x), .x_rd(rd_x), .x_pt(pt_x),
        .x_head(head_x), .x_end(end_x), .x_win(win_x),
        .w_alu_valid(alu_valid), .w_alu_value(alu_value), .w_ld_valid(ld_valid),
        .w_ld_slot(ld_slot), .w_ld_value(ld_value), .w_fault(v_fault), .w_reason(v_reason),
        .w_st_valid(st_valid), .w_st_index(st_index), .w_st_bytes(st_bytes),
        .w_st_data(st_data), .w_adj_valid(adj_valid), .w_adj_slot(adj_slot),
        .w_adj_result(adj_result), .w_adj_change(adj_change), .w_adj_tail(adj_tail),
        .w_adj_pos(adj_pos)
    );

    // the write-back decides whether the packet faulted; stateful and random units commit
    wire commit_w;
    wire [R1-1:0] f_en, sfu_ready;
    wire [6*R1-1:0] f_c;
    wire [64*R1-1:0] f_value;
    generate
        for (u = 0; u < STATEFUL_ALUS; u = u + 1) begin : g_sfu
            pipe_stateful #(
                .PREDICATE_BITS(PREDICATE_BITS), .TABLES(T1), .REG_WORDS(REG_WORDS),
                .NUM_PASSES(NUM_PASSES), .NUM_STAGES(NUM_STAGES), .STAGE_INDEX(STAGE_INDEX),
                .UNIT(u), .STATEFUL_ALUS(STATEFUL_ALUS), .IMAGE_DIR(IMAGE_DIR)
            ) stateful (
                .clk(clk), .rst(rst), .x_valid(v_x_reg), .x_cfg(sfu_mem[bank_x * R1 + u]),
                .x_bank(bank_x), .x_rd(rd_x), .x_pt(pt_x), .x_hit(hit_x), .x_addr(addr_x),
                .w_commit(commit_w), .w_fetch_en(f_en[u]),
                .w_fetch_container(f_c[6 * u +: 6]), .w_fetch_value(f_value[64 * u +: 64]),
                .cp_valid(cp_valid && cp_kind && cp_unit == u), .cp_bank(cp_bank),
                .cp_addr(cp_addr), .cp_data(cp_data[63:0]), .cp_ready(sfu_ready[u])
            );
        end
        if (STATEFUL_ALUS == 0) begin : g_no_sfu
            assign f_en = 1'b0;
            assign f_c = 6'd0;
            assign f_value = 64'd0;
            assign sfu_ready = 1'b1;
        end
    endgenerate
    assign cp_ready = !(cp_kind && cp_unit < STATEFUL_ALUS) || sfu_ready[cp_unit];

    wire [128*NUM_PASSES*NE1-1:0] ext_all;
    generate
        for (s = 0; s < NUM_PASSES * NE1; s = s + 1) begin : g_ext_word
            assign ext_all[128 * s +: 128] = ext_mem[s];
        end
    endgenerate
    wire [NE1-1:0] e_we;
    wire [6*NE1-1:0] e_dst;
    wire [64*NE1-1:0] e_value;
    wire e_fault;
    pipe_externs #(
        .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
        .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM),
        .CHECKSUM_UNITS(CHECKSUM_UNITS), .HASH_UNITS(HASH_UNITS),
        .RANDOM_UNITS(RANDOM_UNITS), .TIMESTAMP_UNITS(TIMESTAMP_UNITS),
        .NUM_PASSES(NUM_PASSES), .CLOCK_KHZ(CLOCK_KHZ)
    ) externs (
        .clk(clk), .rst(rst), .cfg_all(ext_all), .x_valid(v_x_reg), .x_bank(bank_x),
        .x_rd(rd_x), .x_pt(pt_x), .x_head(head_x), .x_win(win_x),
        .x_admit(phv_x_reg[PHV_ADMIT +: 64]), .w_commit(commit_w),
        .w_we(e_we), .w_dst(e_dst), .w_value(e_value), .w_fault(e_fault)
    );

    reg v_w_reg;
    reg [PHV_BITS-1:0] phv_w_reg;
    reg [PREDICATE_BITS-1:0] pt_w_reg;
    reg [T1-1:0] hit_w_reg;
    reg [DATA_BITS*T1-1:0] data_w_reg;
    reg [256*T1-1:0] tcfg_w_reg;
    always @(posedge clk) begin
        if (v_x_reg) begin
            phv_w_reg <= phv_x_reg;
            pt_w_reg <= pt_x;
            hit_w_reg <= hit_x;
            data_w_reg <= data_x;
            tcfg_w_reg <= tcfg_x;
        end
        v_w_reg <= rst ? 1'b0 : v_x_reg;
    end

    // -- W: write-back ----------------------------------------------------------------------
    // whether the packet faults decides the side effects (here and in the stateful units)
    wire fault_in = phv_w_reg[PHV_FAULT];
    wire fault_out = fault_in || (v_w_reg && (v_fault || e_fault));
    assign commit_w = !fault_out;

    reg [PHV_BITS-1:0] o;
    reg [63:0] we;              // slot writes (the merged VLIW results)
    reg [64*64-1:0] val;
    reg [WIN_BITS-1:0] win;
    reg [7:0] aw;
    reg [5:0] c;
    reg signed [POS_BITS+1:0] e_old, e_new, lo, hi;
    reg [63:0] bmask;
    reg v_o_reg;
    reg [PHV_BITS-1:0] phv_o_reg;

    // computed at the clock edge for a PHV (see pipe_alu)
    always @(posedge clk) begin
        if (v_w_reg) begin
            o = phv_w_reg;
            we = alu_valid;
            val = alu_value;
            for (i = 0; i < WINDOW_LOADS; i = i + 1) begin
                if (ld_valid[i]) begin
                    we[ld_slot[6 * i +: 6]] = 1'b1;
                    val[64 * ld_slot[6 * i +: 6] +: 64] = ld_value[64 * i +: 64];
                end
            end
            if (adj_valid) begin
                we[adj_slot] = 1'b1;
                val[64 * adj_slot +: 64] = adj_result;
            end
            // containers: one writer each (validation), so the order is immaterial
            for (i = 0; i < TABLES; i = i + 1) begin
                if (hit_w_reg[i]) begin
                    for (j = 0; j < ACTION_CONTAINERS; j = j + 1) begin
                        aw = tcfg_w_reg[256 * i + 168 + 8 * j +: 8];
                        if (aw[7] && aw[5:0] < NUM_CONTAINERS)
                            o[PHV_CONT + 64 * aw[5:0] +: 64] =
                                data_w_reg[DATA_BITS * i + 64 * j +: 64];
                    end
                end
            end
            for (i = 0; i < STATEFUL_ALUS; i = i + 1) begin
                c = f_c[6 * i +: 6];
                if (f_en[i] && c < NUM_CONTAINERS)
                    o[PHV_CONT + 64 * c +: 64] = f_value[64 * i +: 64];
            end
            for (i = 0; i < NE; i = i + 1) begin
                c = e_dst[6 * i +: 6];
                if (e_we[i] && c < NUM_CONTAINERS)
                    o[PHV_CONT + 64 * c +: 64] = e_value[64 * i +: 64];
            end
            for (i = 0; i < NUM_CONTAINERS; i = i + 1)
                if (we[i])
                    o[PHV_CONT + 64 * i +: 64] = val[64 * i +: 64];
            // metadata: not after a fault
            if (!fault_out) begin
                if (we[51]) o[PHV_VERDICT +: 32] = val[64 * 51 +: 32];
                if (we[52]) o[PHV_REDIRECT +: 32] = val[64 * 52 +: 32];
                if (we[53]) o[PHV_PUNT +: 32] = val[64 * 53 +: 32];
            end
            if (fault_out && !fault_in)
                o[PHV_PUNT +: 32] = v_fault ? {30'd0, v_reason} : 32'd1;
            o[PHV_FAULT] = fault_out;
            o[PHV_PRED +: PREDICATE_BITS] = pt_w_reg | 1'b1;
            // side effects on the packet
            if (!fault_out) begin
                win = o[PHV_WIN +: WIN_BITS];
                for (i = 0; i < WINDOW_STORES; i = i + 1) begin
                    if (st_valid[i]) begin
                        bmask = ~({64{1'b1}} << (8 * st_bytes[4 * i +: 4]));
                        win = (win & ~({{(WIN_BITS - 64){1'b0}}, bmask}
                                       << (8 * st_index[16 * i +: 16])))
                            | ({{(WIN_BITS - 64){1'b0}}, st_data[64 * i +: 64]}
                               << (8 * st_index[16 * i +: 16]));
                    end
                end
                if (adj_change && !adj_tail)
                    o[PHV_HEAD +: POS_BITS] = adj_pos;
                if (adj_change && adj_tail) begin
                    e_old = $signed(phv_w_reg[PHV_END +: POS_BITS]);
                    e_new = $signed(adj_pos);
                    lo = e_old + WINDOW_HEADROOM;
                    hi = e_new + WINDOW_HEADROOM;
                    if (lo < 0) lo = 0;
                    if (hi > WIN_BYTES) hi = WIN_BYTES;
                    if (e_new > e_old && lo < hi)
                        win = win & ~(({WIN_BITS{1'b1}} << (8 * lo))
                                      & ~({WIN_BITS{1'b1}} << (8 * hi)));
                    o[PHV_END +: POS_BITS] = adj_pos;
                    if (e_new < $signed(phv_w_reg[PHV_ZERO_FROM +: POS_BITS]))
                        o[PHV_ZERO_FROM +: POS_BITS] = adj_pos;
                end
                o[PHV_WIN +: WIN_BITS] = win;
            end
            phv_o_reg <= o;
        end
        v_o_reg <= rst ? 1'b0 : v_w_reg;
    end

    pipe_delay #(.WIDTH(PHV_BITS), .CYCLES(STAGE_CYCLES - 4)) pad (
        .clk(clk), .rst(rst), .in_valid(v_o_reg), .in_data(phv_o_reg),
        .out_valid(out_valid), .out_data(out_phv)
    );

    // -- images and parameter checks --------------------------------------------------------
`ifndef SYNTHESIS
    reg [127:0] gw_words [0:G1-1];
    reg [127:0] vliw_words [0:63];
    reg [255:0] tbl_words [0:T1-1];
    reg [191:0] sfu_words [0:R1-1];
    reg [127:0] ext_words [0:NE1-1];
    integer b, k, ll;
    initial begin
        if (STAGE_CYCLES < 4 || NUM_CONTAINERS < 1 || NUM_CONTAINERS > 48 ||
            PREDICATE_BITS < 2 || PREDICATE_BITS > 64 || GATEWAYS > 64 || TABLES > 8 ||
            STATEFUL_ALUS > 8 || NE > 16 || ACTION_CONTAINERS < 1 || ACTION_CONTAINERS > 8 ||
            NUM_PASSES < 1 || STAGE_INDEX >= NUM_STAGES || WINDOW_STORES > 6) begin
            $display("pipe_stage: parameters out of range (STAGE_CYCLES %0d >= 4, NUM_CONTAINERS %0d <= 48, PREDICATE_BITS %0d <= 64, GATEWAYS %0d, TABLES %0d <= 8, STATEFUL_ALUS %0d <= 8, extern units %0d <= 16, ACTION_CONTAINERS %0d <= 8, NUM_PASSES %0d, WINDOW_STORES %0d <= 6)",
                     STAGE_CYCLES, NUM_CONTAINERS, PREDICATE_BITS, GATEWAYS, TABLES,
                     STATEFUL_ALUS, NE, ACTION_CONTAINERS, NUM_PASSES, WINDOW_STORES);
            $finish;
        end
        for (k = 0; k < NUM_PASSES * G1; k = k + 1) gw_mem[k] = 0;
        for (k = 0; k < NUM_PASSES * 64; k = k + 1) vliw_mem[k] = 0;
        for (k = 0; k < NUM_PASSES * T1; k = k + 1) tbl_mem[k] = 0;
        for (k = 0; k < NUM_PASSES * R1; k = k + 1) sfu_mem[k] = 0;
        for (k = 0; k < NUM_PASSES * NE1; k = k + 1) ext_mem[k] = 0;
        for (b = 0; b < NUM_PASSES; b = b + 1) begin
            ll = b * NUM_STAGES + STAGE_INDEX;
            if (GATEWAYS > 0 && file_exists(stage_file(ll, "_gw.hex"))) begin
                $readmemh(stage_file(ll, "_gw.hex"), gw_words);
                for (k = 0; k < GATEWAYS; k = k + 1) gw_mem[b * G1 + k] = gw_words[k];
            end
            if (file_exists(stage_file(ll, "_vliw.hex"))) begin
                $readmemh(stage_file(ll, "_vliw.hex"), vliw_words);
                for (k = 0; k < 64; k = k + 1) vliw_mem[b * 64 + k] = vliw_words[k];
            end
            if (TABLES > 0 && file_exists(stage_file(ll, "_tbl.hex"))) begin
                $readmemh(stage_file(ll, "_tbl.hex"), tbl_words);
                for (k = 0; k < TABLES; k = k + 1) tbl_mem[b * T1 + k] = tbl_words[k];
            end
            if (STATEFUL_ALUS > 0 && file_exists(stage_file(ll, "_sfu.hex"))) begin
                $readmemh(stage_file(ll, "_sfu.hex"), sfu_words);
                for (k = 0; k < STATEFUL_ALUS; k = k + 1) sfu_mem[b * R1 + k] = sfu_words[k];
            end
            if (NE > 0 && file_exists(stage_file(ll, "_ext.hex"))) begin
                $readmemh(stage_file(ll, "_ext.hex"), ext_words);
                for (k = 0; k < NE; k = k + 1) ext_mem[b * NE1 + k] = ext_words[k];
            end
        end
    end
`endif
endmodule

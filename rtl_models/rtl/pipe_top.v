`default_nettype none
// pipe_top: the pipe target (docs/pipeline.md): parser, NUM_STAGES physical stages with
// recirculation for NUM_PASSES passes, deparser, payload FIFO and the control plane port.
//
// Timing (section 8, cycle-exact with hw.pipeline.timing): a packet's PHV is ready
// PARSER_CYCLES after its first beat and enters stage 0 in the first cycle after the
// previous admission that no recirculating PHV takes (recirculation first); each pass takes
// NUM_STAGES * STAGE_CYCLES cycles, each recirculation RECIRC_CYCLES more; the first output
// beat can leave DEPARSER_CYCLES after the last pass. One PHV enters per clock: II = 1 for a
// configuration that fits (NUM_PASSES = 1) and packets of at most one bus beat. Buffers
// are finite: s_axis_tready drops while OUT_FIFO_DEPTH packets are in flight, the
// payload FIFO is full or the parser's window FIFO is (TimingModel's BufferDepths, section
// 8.1); it happens when recirculation or the output bus is slower than the input for a
// long burst. The deparser spends a cycle per payload beat it skips or drains (a head
// moved past a beat, a cut tail), which TimingModel does not count.
//
// Streams (first byte in lane 0):
//   s_axis       packets in; tuser at the first beat = {rx_queue, ingress_ifindex, pkt_len}
//   m_axis       packets out, tuser = {redirect, verdict}, every verdict
//   m_axis_punt  punted packets with their punt header (section 7)
// Control plane (section 9): one table entry (cfg_kind 0) or register word (cfg_kind 1) per
// cfg_valid && cfg_ready. Image port: rewrites a configuration word (img_mem 0 gw, 1 vliw,
// 2 tbl, 3 sfu, 4 ext of logical stage img_stage; 5 parser, 6 deparser); the images in
// IMAGE_DIR are loaded at start, so simulations tie img_valid to 0.
module pipe_top #(
    // target parameters (docs/pipeline.md section 2; the names of hw.pipeline.TargetParams)
    parameter CLOCK_KHZ = 250000,      // core clock, kHz (clock_mhz * 1000)
    parameter BUS_BITS = 512,          // AXI-Stream data width
    parameter WINDOW_BYTES = 256,      // W: packet bytes visible to the pipeline
    parameter WINDOW_HEADROOM = 64,    // H: room in front of the packet for adjust_head
    parameter VARIABLE_OFFSET = 1,     // wldv / wstv supported
    parameter NUM_CONTAINERS = 32,     // C: 64-bit PHV containers, <= 48
    parameter PREDICATE_BITS = 64,     // P: predicate bits, <= 64
    parameter NUM_STAGES = 12,         // S: physical stages
    parameter STAGE_CYCLES = 4,        // latency of one stage, >= 4 in this RTL
    parameter PARSER_CYCLES = 5,       // first beat in to PHV ready
    parameter DEPARSER_CYCLES = 2,     // last stage out to first output beat, >= 2
    parameter RECIRC_CYCLES = 8,       // extra cycles per recirculation
    parameter MAX_PASSES = 4,          // passes the target allows
    parameter GATEWAYS = 8,            // per stage
    parameter TABLES = 4,              // per stage, <= 8
    parameter STATEFUL_ALUS = 2,       // per stage, <= 8
    parameter CHECKSUM_UNITS = 1,      // extern engines per stage, 16 in total at most
    parameter HASH_UNITS = 1,
    parameter RANDOM_UNITS = 1,
    parameter TIMESTAMP_UNITS = 1,
    parameter KEY_BITS = 512,          // widest table key
    parameter KEY_SLICES = 8,          // slices per key, <= 8
    parameter ACTION_CONTAINERS = 4,   // containers a table hit writes, <= 8
    parameter WINDOW_LOADS = 8,        // window load ports per stage
    parameter WINDOW_STORES = 4,       // window store ports per stage, <= 6
    parameter PUNT_CONTAINERS = 8,     // containers a punt header carries, <= 8
    parameter MUL_MAX_BITS = 32,       // widest mul: 0, 32, 64
    parameter DIV = "none",            // "none", "constant", "full"
    parameter FRAME_HEADROOM = 216,    // adjust_head limit, bytes
    parameter FRAME_END = 3520,        // adjust_tail limit; longer frames are punted
    parameter MIN_PACKET_BYTES = 14,   // shorter packets are dropped
    // the configuration and this implementation
    parameter NUM_PASSES = 1,          // passes of the configuration (PIPE_NUM_PASSES)
    parameter TABLE_DEPTH = 1024,      // entries per table unit and pass, >= every size
    parameter REG_WORDS = 1024,        // registers per stateful unit and pass, >= every words
    parameter OUT_FIFO_DEPTH = 0,      // packets in flight (deparser records); 0: automatic
    parameter PAYLOAD_FIFO_DEPTH = 0,  // payload FIFO beats; 0: automatic
    parameter IMAGE_DIR = "."          // directory of the memory images (section 11)
) (
    input  wire                          clk,
    input  wire                          rst,
    input  wire [BUS_BITS-1:0]           s_axis_tdata,
    input  wire [BUS_BITS/8-1:0]         s_axis_tkeep,
    input  wire                          s_axis_tvalid,
    output wire                          s_axis_tready,
    input  wire                          s_axis_tlast,
    input  wire [79:0]                   s_axis_tuser,
    output wire [BUS_BITS-1:0]           m_axis_tdata,
    output wire [BUS_BITS/8-1:0]         m_axis_tkeep,
    output wire                          m_axis_tvalid,
    input  wire                          m_axis_tready,
    output wire                          m_axis_tlast,
    output wire [63:0]                   m_axis_tuser,
    output wire [BUS_BITS-1:0]           m_axis_punt_tdata,
    output wire [BUS_BITS/8-1:0]         m_axis_punt_tkeep,
    output wire                          m_axis_punt_tvalid,
    input  wire                          m_axis_punt_tready,
    output wire                          m_axis_punt_tlast,
    input  wire                          cfg_valid,
    output wire                          cfg_ready,
    input  wire                          cfg_kind,        // 0 table entry, 1 register word
    input  wire [7:0]                    cfg_stage,       // logical stage
    input  wire [2:0]                    cfg_unit,        // table slot or stateful unit
    input  wire [15:0]                   cfg_addr,        // entry address or register word
    input  wire                          cfg_entry_valid, // table: 1 write, 0 delete
    input  wire [KEY_BITS-1:0]           cfg_key,
    input  wire [KEY_BITS-1:0]           cfg_mask,
    input  wire [64*ACTION_CONTAINERS-1:0] cfg_data,     // register: [63:0]
    input  wire                          img_valid,
    input  wire [7:0]                    img_stage,
    input  wire [2:0]                    img_mem,
    input  wire [7:0]                    img_addr,
    input  wire [255:0]                  img_data
);
`include "pipe_defs.vh"
    localparam LATENCY = PARSER_CYCLES + NUM_PASSES * NUM_STAGES * STAGE_CYCLES
                       + (NUM_PASSES - 1) * RECIRC_CYCLES + DEPARSER_CYCLES;
    localparam OUT_DEPTH = OUT_FIFO_DEPTH > 0 ? OUT_FIFO_DEPTH : pow2_at_least(LATENCY + 8);
    localparam PAY_DEPTH = PAYLOAD_FIFO_DEPTH > 0 ? PAYLOAD_FIFO_DEPTH
                                                  : pow2_at_least(LATENCY + 8);

    function integer pow2_at_least;
        input integer v;
        begin
            pow2_at_least = 2;
            while (pow2_at_least < v)
                pow2_at_least = pow2_at_least * 2;
        end
    endfunction

`ifndef SYNTHESIS
    initial begin
        if (NUM_PASSES < 1 || NUM_PASSES > MAX_PASSES || KEY_SLICES < 1 || KEY_SLICES > 8 ||
            VARIABLE_OFFSET < 0 || VARIABLE_OFFSET > 1 || NUM_STAGES < 1 ||
            NUM_STAGES * NUM_PASSES > 100 || RECIRC_CYCLES < 0) begin
            $display("pipe_top: NUM_PASSES %0d (1..MAX_PASSES %0d), KEY_SLICES %0d (1..8), VARIABLE_OFFSET %0d (0, 1), NUM_STAGES %0d, RECIRC_CYCLES %0d",
                     NUM_PASSES, MAX_PASSES, KEY_SLICES, VARIABLE_OFFSET, NUM_STAGES,
                     RECIRC_CYCLES);
            $finish;
        end
    end
`endif

    reg [63:0] cycle_reg;  // cycles since reset: admit_cycle of the timestamp extern
    always @(posedge clk)
        cycle_reg <= rst ? 64'd0 : cycle_reg + 1'b1;

    // -- parser and payload FIFO ------------------------------------------------------------
    reg [15:0] inflight_reg;
    wire pkt_start, pkt_done;
    wire credit_ok = inflight_reg < OUT_DEPTH;
    always @(posedge clk)
        inflight_reg <= rst ? 16'd0 : inflight_reg + pkt_start - pkt_done;

    wire [BUS_BITS-1:0] pay_in_data, pay_out_data;
    wire pay_in_valid, pay_in_ready, pay_out_valid, pay_out_ready;
    wire p_valid, p_ready;
    wire [PHV_BITS-1:0] p_phv;
    pipe_parser #(
        .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
        .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM), .BUS_BITS(BUS_BITS),
        .PARSER_CYCLES(PARSER_CYCLES), .MIN_PACKET_BYTES(MIN_PACKET_BYTES),
        .FRAME_END(FRAME_END), .PUNT_CONTAINERS(PUNT_CONTAINERS),
        // several passes admit slower than packets arrive: windows queue here, as many as
        // packets may be in flight, so that only the credits stop the input
        .WINDOW_FIFO_DEPTH(NUM_PASSES > 1 ? OUT_DEPTH : 0), .IMAGE_DIR(IMAGE_DIR)
    ) parser (
        .clk(clk), .rst(rst), .cycle(cycle_reg),
        .s_axis_tdata(s_axis_tdata), .s_axis_tkeep(s_axis_tkeep),
        .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .s_axis_tlast(s_axis_tlast), .s_axis_tuser(s_axis_tuser),
        .credit_ok(credit_ok), .pkt_start(pkt_start),
        .pay_data(pay_in_data), .pay_valid(pay_in_valid), .pay_ready(pay_in_ready),
        .phv_valid(p_valid), .phv(p_phv), .phv_ready(p_ready),
        .img_valid(img_valid), .img_mem(img_mem), .img_addr(img_addr), .img_data(img_data)
    );

    pipe_fifo #(.WIDTH(BUS_BITS), .DEPTH(PAY_DEPTH)) payload (
        .clk(clk), .rst(rst), .in_data(pay_in_data), .in_valid(pay_in_valid),
        .in_ready(pay_in_ready), .out_data(pay_out_data), .out_valid(pay_out_valid),
        .out_ready(pay_out_ready), .count()
    );

    // -- admission: recirculating PHVs first ------------------------------------------------
    wire rc_valid;
    wire [PHV_BITS-1:0] rc_phv;
    // one net per stage boundary (an array of nets, not one flat bus): a flat bus of
    // (NUM_STAGES+1)*PHV_BITS bits driven by part-selects makes Icarus rebuild the whole
    // bus bit by bit whenever any stage's output changes
    wire [PHV_BITS-1:0] chain [0:NUM_STAGES];
    wire [NUM_STAGES:0] chain_valid;
    reg [PHV_BITS-1:0] admitted;
    always @* begin
        admitted = p_phv;
        admitted[PHV_ADMIT +: 64] = cycle_reg;
    end
    assign p_ready = !rc_valid;
    assign chain_valid[0] = rc_valid || p_valid;
    assign chain[0] = rc_valid ? rc_phv : p_valid ? admitted : p_phv;

    // -- control plane: one transaction buffered, taken by the stage it addresses -----------
    reg cp_pend_reg, cp_kind_reg, cp_entry_valid_reg;
    reg [7:0] cp_stage_reg;
    reg [2:0] cp_unit_reg;
    reg [15:0] cp_addr_reg;
    reg [KEY_BITS-1:0] cp_key_reg, cp_mask_reg;
    reg [64*ACTION_CONTAINERS-1:0] cp_data_reg;
    wire [7:0] cp_phys = cp_stage_reg % NUM_STAGES;
    wire [7:0] cp_bank = cp_stage_reg / NUM_STAGES;
    wire [NUM_STAGES-1:0] cp_ready_st;
    wire cp_taken = cp_pend_reg && (cp_bank >= NUM_PASSES || cp_ready_st[cp_phys]);
    assign cfg_ready = !cp_pend_reg;
    always @(posedge clk) begin
        if (cfg_valid && cfg_ready) begin
            cp_kind_reg <= cfg_kind;
            cp_stage_reg <= cfg_stage;
            cp_unit_reg <= cfg_unit;
            cp_addr_reg <= cfg_addr;
            cp_entry_valid_reg <= cfg_entry_valid;
            cp_key_reg <= cfg_key;
            cp_mask_reg <= cfg_mask;
            cp_data_reg <= cfg_data;
        end
        if (rst)
            cp_pend_reg <= 1'b0;
        else if (cfg_valid && cfg_ready)
            cp_pend_reg <= 1'b1;
        else if (cp_taken)
            cp_pend_reg <= 1'b0;
    end
    wire [7:0] img_phys = img_stage % NUM_STAGES;
    wire [7:0] img_bank = img_stage / NUM_STAGES;

    // -- stages -----------------------------------------------------------------------------
    genvar s;
    generate
        for (s = 0; s < NUM_STAGES; s = s + 1) begin : g_stage
            pipe_stage #(
                .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
                .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM),
                .STAGE_CYCLES(STAGE_CYCLES), .GATEWAYS(GATEWAYS), .TABLES(TABLES),
                .STATEFUL_ALUS(STATEFUL_ALUS), .CHECKSUM_UNITS(CHECKSUM_UNITS),
                .HASH_UNITS(HASH_UNITS), .RANDOM_UNITS(RANDOM_UNITS),
                .TIMESTAMP_UNITS(TIMESTAMP_UNITS), .KEY_BITS(KEY_BITS),
                .ACTION_CONTAINERS(ACTION_CONTAINERS), .WINDOW_LOADS(WINDOW_LOADS),
                .WINDOW_STORES(WINDOW_STORES), .MUL_MAX_BITS(MUL_MAX_BITS), .DIV(DIV),
                .FRAME_HEADROOM(FRAME_HEADROOM), .FRAME_END(FRAME_END),
                .MIN_PACKET_BYTES(MIN_PACKET_BYTES), .CLOCK_KHZ(CLOCK_KHZ),
                .NUM_STAGES(NUM_STAGES), .STAGE_INDEX(s), .NUM_PASSES(NUM_PASSES),
                .TABLE_DEPTH(TABLE_DEPTH), .REG_WORDS(REG_WORDS), .IMAGE_DIR(IMAGE_DIR)
            ) stage (
                .clk(clk), .rst(rst),
                .in_valid(chain_valid[s]), .in_phv(chain[s]),
                .out_valid(chain_valid[s + 1]), .out_phv(chain[s + 1]),
                .cp_valid(cp_pend_reg && cp_phys == s && cp_bank < NUM_PASSES),
                .cp_kind(cp_kind_reg), .cp_bank(cp_bank), .cp_unit(cp_unit_reg),
                .cp_addr(cp_addr_reg), .cp_entry_valid(cp_entry_valid_reg),
                .cp_key(cp_key_reg), .cp_mask(cp_mask_reg), .cp_data(cp_data_reg),
                .cp_ready(cp_ready_st[s]),
                .img_valid(img_valid && img_mem <= 3'd4 && img_phys == s),
                .img_bank(img_bank), .img_mem(img_mem), .img_addr(img_addr),
                .img_data(img_data)
            );
        end
    endgenerate

    // -- recirculation or deparser ----------------------------------------------------------
    wire [PHV_BITS-1:0] last_phv = chain[NUM_STAGES];
    wire [7:0] last_pass = last_phv[PHV_PASS +: 8];
    wire final_pass = last_pass >= NUM_PASSES - 1;
    reg [PHV_BITS-1:0] next_pass;
    always @* begin
        next_pass = last_phv;
        next_pass[PHV_PASS +: 8] = last_pass + 1'b1;
    end

    pipe_delay #(.WIDTH(PHV_BITS), .CYCLES(RECIRC_CYCLES)) recirc (
        .clk(clk), .rst(rst), .in_valid(chain_valid[NUM_STAGES] && !final_pass),
        .in_data(next_pass), .out_valid(rc_valid), .out_data(rc_phv)
    );

    pipe_deparser #(
        .NUM_CONTAINERS(NUM_CONTAINERS), .PREDICATE_BITS(PREDICATE_BITS),
        .WINDOW_BYTES(WINDOW_BYTES), .WINDOW_HEADROOM(WINDOW_HEADROOM), .BUS_BITS(BUS_BITS),
        .PUNT_CONTAINERS(PUNT_CONTAINERS), .DEPARSER_CYCLES(DEPARSER_CYCLES),
        .OUT_FIFO_DEPTH(OUT_DEPTH), .IMAGE_DIR(IMAGE_DIR)
    ) deparser (
        .clk(clk), .rst(rst), .in_valid(chain_valid[NUM_STAGES] && final_pass),
        .in_phv(last_phv),
        .pay_data(pay_out_data), .pay_valid(pay_out_valid), .pay_ready(pay_out_ready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tkeep(m_axis_tkeep),
        .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast), .m_axis_tuser(m_axis_tuser),
        .m_axis_punt_tdata(m_axis_punt_tdata), .m_axis_punt_tkeep(m_axis_punt_tkeep),
        .m_axis_punt_tvalid(m_axis_punt_tvalid), .m_axis_punt_tready(m_axis_punt_tready),
        .m_axis_punt_tlast(m_axis_punt_tlast), .pkt_done(pkt_done),
        .img_valid(img_valid), .img_mem(img_mem), .img_addr(img_addr), .img_data(img_data)
    );
endmodule

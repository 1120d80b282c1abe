`default_nettype none
// pipe_parser: packet window extraction (docs/pipeline.md section 3).
//
// s_axis carries packets, first byte in lane 0; s_axis_tuser at the first beat gives the
// packet's length (the PHV needs it before the last beat arrives), ingress_ifindex and
// rx_queue: {rx_queue[31:0], ingress_ifindex[31:0], pkt_len[15:0]}. Packets shorter than
// MIN_PACKET_BYTES are dropped here. Beats holding positions >= WINDOW_BYTES go to the
// payload FIFO (pay_*) for the deparser. The first WINDOW_BYTES bytes (zero past the
// packet) make the window; PARSER_CYCLES after the first beat the PHV leaves (phv_*):
// container c = the little-endian load of word c of parser.hex, P[0] = 1, verdict = word 0
// of deparser.hex, head 0, end = zero_from = pkt_len. A frame longer than FRAME_END enters
// the stages already faulted with punt reason 3 (it is punted unchanged).
module pipe_parser #(
    parameter NUM_CONTAINERS = 32,   // C
    parameter PREDICATE_BITS = 64,   // P
    parameter WINDOW_BYTES = 256,    // W
    parameter WINDOW_HEADROOM = 64,  // H
    parameter BUS_BITS = 512,        // AXI-Stream data width
    parameter PARSER_CYCLES = 5,     // first beat in to PHV out, >= window beats + 1
    parameter MIN_PACKET_BYTES = 14, // shorter packets are dropped
    parameter FRAME_END = 3520,      // longer frames are punted (reason 3)
    parameter PUNT_CONTAINERS = 8,   // deparser.hex holds 1 + PUNT_CONTAINERS words
    parameter WINDOW_FIFO_DEPTH = 0, // windows waiting for admission; 0: enough for
                                     // PARSER_CYCLES (one pass: II = 1 never backs up)
    parameter IMAGE_DIR = "."        // directory of parser.hex and deparser.hex
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire [63:0]           cycle,          // free-running cycle counter
    input  wire [BUS_BITS-1:0]   s_axis_tdata,
    input  wire [BUS_BITS/8-1:0] s_axis_tkeep,
    input  wire                  s_axis_tvalid,
    output wire                  s_axis_tready,
    input  wire                  s_axis_tlast,
    input  wire [79:0]           s_axis_tuser,
    input  wire                  credit_ok,      // a new packet may start
    output wire                  pkt_start,      // a packet was accepted (takes a credit)
    output wire [BUS_BITS-1:0]   pay_data,
    output wire                  pay_valid,
    input  wire                  pay_ready,
    output reg                   phv_valid,
    output reg  [PHV_BITS-1:0]   phv,
    input  wire                  phv_ready,
    // image port: parser words (img_mem 5, address = container), default verdict
    // (img_mem 6, address 0)
    input  wire                  img_valid,
    input  wire [2:0]            img_mem,
    input  wire [7:0]            img_addr,
    input  wire [255:0]          img_data
);
`include "pipe_defs.vh"
`ifndef SYNTHESIS
`include "pipe_files.vh"
`endif
    localparam BB = BUS_BITS / 8;                        // bytes per beat
    localparam K0 = WINDOW_BYTES / BB;                   // first beat into the payload FIFO
    localparam WB = (WINDOW_BYTES + BB - 1) / BB;        // beats of the window
    localparam WIN_W = 8 * WINDOW_BYTES;
    localparam REC_BITS = WIN_W + 16 + 32 + 32 + 64;     // window, len, ingress, queue, stamp
    localparam REC_DEPTH = WINDOW_FIFO_DEPTH > 0 ? WINDOW_FIFO_DEPTH
                         : PARSER_CYCLES < 7 ? 8 : PARSER_CYCLES < 15 ? 16 : 32;

    reg [31:0] parser_mem [0:NUM_CONTAINERS-1];
    reg [31:0] default_verdict_reg;

    always @(posedge clk) begin
        if (img_valid && img_mem == 3'd5 && img_addr < NUM_CONTAINERS)
            parser_mem[img_addr] <= img_data[31:0];
        if (img_valid && img_mem == 3'd6 && img_addr == 0)
            default_verdict_reg <= img_data[31:0];
    end

    // -- input ------------------------------------------------------------------------------
    reg in_pkt_reg, drop_reg, done_reg;
    reg [15:0] beat_reg, len_reg;
    reg [31:0] ingress_reg, queue_reg;
    reg [63:0] stamp_reg;
    reg [WIN_W-1:0] win_reg;

    wire first = !in_pkt_reg;
    wire [15:0] beat = first ? 16'd0 : beat_reg;
    wire [15:0] len = first ? s_axis_tuser[15:0] : len_reg;
    wire drop = first ? s_axis_tuser[15:0] < MIN_PACKET_BYTES : drop_reg;
    wire to_payload = beat >= K0;
    wire rec_ready;
    assign s_axis_tready = rec_ready && (!to_payload || pay_ready) && (in_pkt_reg || credit_ok);
    wire accept = s_axis_tvalid && s_axis_tready;

    wire [WIN_W-1:0] win_next = (first ? {WIN_W{1'b0}} : win_reg)
        | ({{(WIN_W > BUS_BITS ? WIN_W - BUS_BITS : 1){1'b0}}, s_axis_tdata} << (BUS_BITS * beat));
    wire window_done = beat == WB - 1 || s_axis_tlast;
    wire push_rec = accept && !drop && !(!first && done_reg) && window_done;
    wire [WIN_W-1:0] len_mask = len >= WINDOW_BYTES ? {WIN_W{1'b1}}
                                                    : ~({WIN_W{1'b1}} << (8 * len));
    wire [63:0] stamp = first ? cycle : stamp_reg;
    wire [31:0] ingress = first ? s_axis_tuser[47:16] : ingress_reg;
    wire [31:0] queue = first ? s_axis_tuser[79:48] : queue_reg;

    assign pkt_start = accept && first && !drop;
    assign pay_valid = accept && !drop && to_payload;
    assign pay_data = s_axis_tdata;

    always @(posedge clk) begin
        if (accept) begin
            win_reg <= win_next;
            beat_reg <= beat + 1'b1;
            len_reg <= len;
            drop_reg <= drop;
            stamp_reg <= stamp;
            ingress_reg <= ingress;
            queue_reg <= queue;
            done_reg <= (first ? 1'b0 : done_reg) || push_rec;
        end
        if (rst)
            in_pkt_reg <= 1'b0;
        else if (accept)
            in_pkt_reg <= !s_axis_tlast;
    end

    // -- window records, released PARSER_CYCLES after the first beat -----------------------
    wire [REC_BITS-1:0] rec;
    wire rec_valid;
    wire rec_pop;
    pipe_fifo #(.WIDTH(REC_BITS), .DEPTH(REC_DEPTH)) records (
        .clk(clk), .rst(rst),
        .in_data({stamp, queue, ingress, len, win_next & len_mask}), .in_valid(push_rec),
        .in_ready(rec_ready),
        .out_data(rec), .out_valid(rec_valid), .out_ready(rec_pop), .count()
    );

    wire [WIN_W-1:0] r_win = rec[WIN_W-1:0];
    wire [15:0] r_len = rec[WIN_W +: 16];
    wire [31:0] r_ingress = rec[WIN_W + 16 +: 32];
    wire [31:0] r_queue = rec[WIN_W + 48 +: 32];
    wire [63:0] r_stamp = rec[WIN_W + 80 +: 64];
    assign rec_pop = rec_valid && (cycle - r_stamp >= PARSER_CYCLES - 1) &&
                     (!phv_valid || phv_ready);

    wire [32*NUM_CONTAINERS-1:0] parser_words;
    genvar g;
    generate
        for (g = 0; g < NUM_CONTAINERS; g = g + 1) begin : g_word
            assign parser_words[32 * g +: 32] = parser_mem[g];
        end
    endgenerate

    reg [PHV_BITS-1:0] p;
    reg [31:0] pw;
    reg [63:0] smask;
    reg too_long;
    integer c;
    always @* begin
        p = {PHV_BITS{1'b0}};
        for (c = 0; c < NUM_CONTAINERS; c = c + 1) begin
            pw = parser_words[32 * c +: 32];
            case (pw[2:1])
                2'd0: smask = 64'h00000000000000ff;
                2'd1: smask = 64'h000000000000ffff;
                2'd2: smask = 64'h00000000ffffffff;
                default: smask = {64{1'b1}};
            endcase
            if (pw[0])
                p[PHV_CONT + 64 * c +: 64] = (r_win >> (8 * pw[18:3])) & smask;
        end
        too_long = r_len > FRAME_END;
        p[PHV_PRED] = 1'b1;
        p[PHV_VERDICT +: 32] = default_verdict_reg;
        p[PHV_PUNT +: 32] = too_long ? 32'd3 : 32'd0;
        p[PHV_FAULT] = too_long;
        p[PHV_PKT_LEN +: 16] = r_len;
        p[PHV_INGRESS +: 32] = r_ingress;
        p[PHV_QUEUE +: 32] = r_queue;
        p[PHV_END +: POS_BITS] = r_len;
        p[PHV_ZERO_FROM +: POS_BITS] = r_len;
        p[PHV_WIN + 8 * WINDOW_HEADROOM +: WIN_W] = r_win;
    end

    always @(posedge clk) begin
        if (rec_pop)
            phv <= p;
        if (rst)
            phv_valid <= 1'b0;
        else if (rec_pop)
            phv_valid <= 1'b1;
        else if (phv_ready)
            phv_valid <= 1'b0;
    end

`ifndef SYNTHESIS
    reg [31:0] dep_words [0:PUNT_CONTAINERS];  // the whole file: default verdict first
    integer k;
    initial begin
        if (BUS_BITS % 8 != 0 || BUS_BITS < 8 || WINDOW_BYTES < 14 ||
            PARSER_CYCLES < WB + 1 || NUM_CONTAINERS < 1 || NUM_CONTAINERS > 48) begin
            $display("pipe_parser: BUS_BITS %0d (a multiple of 8), WINDOW_BYTES %0d (>= 14), PARSER_CYCLES %0d (>= %0d window beats + 1), NUM_CONTAINERS %0d (1..48)",
                     BUS_BITS, WINDOW_BYTES, PARSER_CYCLES, WB, NUM_CONTAINERS);
            $finish;
        end
        for (k = 0; k < NUM_CONTAINERS; k = k + 1)
            parser_mem[k] = 0;
        default_verdict_reg = 0;
        if (file_exists(image_file("parser.hex")))
            $readmemh(image_file("parser.hex"), parser_mem);
        if (file_exists(image_file("deparser.hex"))) begin
            $readmemh(image_file("deparser.hex"), dep_words, 0, PUNT_CONTAINERS);
            default_verdict_reg = dep_words[0];
        end
    end
`endif
endmodule
